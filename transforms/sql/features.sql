-- Point-in-time features of every customer known on observation date $t. Every source is
-- read as it was known on $t: rows delivered on or before $t (dt <= $t), customer records
-- valid on $t, the ledger state on $t. Nothing after $t can change a value here.
with customers_at as (
    select
        customer_id,
        registered_on,
        birth_year,
        gender,
        city_tier,
        occupation,
        kyc_level,
        declared_monthly_income,
        status
    from customer_versions
    where valid_from <= $t
      and (valid_to is null or valid_to > $t)
),

behaviour_90 as (
    select *
    from behaviour
    where dt <= $t
      and business_date > $t - 90
      and business_date <= $t
),

behaviour_windows as (
    select
        customer_id,
        count(*) filter (where business_date > $t - 7) as active_days_7,
        count(*) filter (where business_date > $t - 30) as active_days_30,
        count(*) as active_days_90,
        avg(app_minutes) filter (where business_date > $t - 30) as app_minutes_avg_30,
        avg(app_sessions) filter (where business_date > $t - 30) as app_sessions_avg_30,
        sum(payments_count) filter (where business_date > $t - 30) as payments_count_30,
        sum(payments_amount) filter (where business_date > $t - 30) as payments_amount_30,
        sum(payments_amount) as payments_amount_90,
        sum(transfers_in_amount) filter (where business_date > $t - 30) as transfers_in_30,
        sum(transfers_out_amount) filter (where business_date > $t - 30) as transfers_out_30,
        sum(transfers_out_amount) / (sum(transfers_in_amount) + 1) as transfers_out_in_ratio_90,
        sum(transfers_out_amount) filter (where business_date > $t - 30)
            / (coalesce(sum(transfers_in_amount) filter (where business_date > $t - 30), 0) + 1) as transfers_out_in_ratio_30,
        sum(red_packets_sent) filter (where business_date > $t - 30) as red_packets_sent_30,
        sum(red_packets_received) filter (where business_date > $t - 30) as red_packets_received_30,
        sum(contacts_added) filter (where business_date > $t - 30) as contacts_added_30,
        sum(device_changed::INTEGER) as device_changes_90,
        sum(device_changed::INTEGER) filter (where business_date > $t - 30) as device_changes_30,
        avg(night_activity_share) filter (where business_date > $t - 7) as night_share_avg_7,
        avg(night_activity_share) filter (where business_date > $t - 30) as night_share_avg_30,
        avg(night_activity_share) as night_share_avg_90,
        avg(wallet_balance) filter (where business_date > $t - 7) as wallet_avg_7,
        avg(wallet_balance) filter (where business_date > $t - 30) as wallet_avg_30,
        avg(wallet_balance) as wallet_avg_90,
        stddev_samp(wallet_balance) filter (where business_date > $t - 30) as wallet_sd_30,
        min(wallet_balance) filter (where business_date > $t - 30) as wallet_min_30,
        max($t - business_date) as days_since_first_active_90,
        min($t - business_date) as days_since_last_active
    from behaviour_90
    group by customer_id
),

ledger_now as (
    select
        customer_id,
        count(*) filter (where outstanding_principal > 0) as active_loans,
        coalesce(sum(outstanding_principal), 0) as outstanding_principal,
        coalesce(sum(overdue_amount), 0) as overdue_amount,
        max(dpd) as dpd_now,
        coalesce(sum(outstanding_principal) / nullif(sum(principal), 0), 0) as principal_outstanding_share
    from loan_daily
    where dt = $t
    group by customer_id
),

ledger_history as (
    -- the ledger's own daily states over the last 180 days (history, as it was computed then)
    select
        customer_id,
        max(dpd) filter (where dt > $t - 90) as worst_dpd_90,
        max(dpd) as worst_dpd_180,
        avg((dpd = 0)::INTEGER) filter (where dt > $t - 90) as clean_days_share_90,
        count(*) filter (where dpd >= 30) > 0 as was_30plus_180
    from loan_daily
    where dt > $t - 180
      and dt <= $t
      and outstanding_principal > 0
    group by customer_id
),

loans_history as (
    select
        customer_id,
        count(*) as loans_ever,
        count(*) filter (where dt > $t - 90) as loans_90,
        sum(principal) filter (where dt > $t - 90) as principal_borrowed_90,
        $t - min(dt) as days_since_first_loan,
        $t - max(dt) as days_since_last_loan
    from loans
    where dt <= $t
    group by customer_id
),

payment_events as (
    select
        customer_id,
        count(*) filter (where txn_type = 'REPAYMENT' and status = 'FAILED') as failed_repayments_90,
        count(*) filter (where txn_type = 'REVERSAL') as reversals_90,
        count(*) filter (where txn_type = 'REPAYMENT' and status = 'SUCCESS') as repayments_90
    from transactions
    where dt <= $t
      and dt > $t - 90
      and txn_type in ('REPAYMENT', 'REVERSAL')
    group by customer_id
),

final as (
    select
        $t::DATE as observation_date,
        c.customer_id,
        c.status,
        (year($t::DATE) - c.birth_year)::INTEGER as age,
        c.gender,
        c.city_tier,
        c.occupation,
        c.kyc_level,
        c.declared_monthly_income::DOUBLE as declared_monthly_income,
        ($t - c.registered_on)::INTEGER as tenure_days,
        b.* exclude (customer_id),
        (b.wallet_avg_7 / nullif(b.wallet_avg_90, 0))::DOUBLE as wallet_trend_7_90,
        coalesce(n.active_loans, 0) as active_loans,
        coalesce(n.outstanding_principal, 0)::DOUBLE as outstanding_principal,
        coalesce(n.overdue_amount, 0)::DOUBLE as overdue_amount,
        coalesce(n.dpd_now, 0) as dpd_now,
        n.principal_outstanding_share::DOUBLE as principal_outstanding_share,
        coalesce(h.worst_dpd_90, 0) as worst_dpd_90,
        coalesce(h.worst_dpd_180, 0) as worst_dpd_180,
        h.clean_days_share_90,
        coalesce(h.was_30plus_180, false)::INTEGER as was_30plus_180,
        coalesce(l.loans_ever, 0) as loans_ever,
        coalesce(l.loans_90, 0) as loans_90,
        coalesce(l.principal_borrowed_90, 0)::DOUBLE as principal_borrowed_90,
        l.days_since_first_loan,
        l.days_since_last_loan,
        coalesce(p.failed_repayments_90, 0) as failed_repayments_90,
        coalesce(p.reversals_90, 0) as reversals_90,
        coalesce(p.repayments_90, 0) as repayments_90
    from customers_at as c
    left join behaviour_windows as b using (customer_id)
    left join ledger_now as n using (customer_id)
    left join ledger_history as h using (customer_id)
    left join loans_history as l using (customer_id)
    left join payment_events as p using (customer_id)
)

select * from final order by customer_id
