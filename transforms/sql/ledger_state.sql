-- The state of every active loan at the end of business date $d, from the state at the
-- previous processed date ($prev; loan_daily rows) plus what was delivered since.
-- Payments fill the schedule in order: instalments oldest first, interest before principal
-- within each (contract section 2). So a loan's whole position follows from one number,
-- its net amount paid, set against the schedule's cumulative amounts (cum_before).
with prev as (
    select * from loan_daily where dt = $prev
),

-- a loan that had left the active set comes back if something happens to it (a reversal)
revived as (
    select a.* exclude (archived_on)
    from loan_archive as a
    where a.loan_id in (select loan_id from ledger_events)
      and a.loan_id not in (select loan_id from prev)
),

new_loans as (
    select
        loan_id,
        customer_id,
        product,
        (date '1970-01-01' + cast((epoch_us(originated_at) + 28800000000) // 86400000000 as integer)) as originated_on,
        principal
    from loans
    where (
            (dt > $after and dt <= $d)
            -- a loan whose schedule only arrived now enters the ledger now
            or loan_id in (select loan_id from schedule where dt > $after and dt <= $d)
        )
      and dt <= $d
      and loan_id not in (select loan_id from prev)
      and loan_id not in (select loan_id from revived)
),

base as (
    select loan_id, customer_id, product, originated_on, principal, paid_total,
           first_30plus_on, first_90plus_on, max_dpd, closed_on
    from prev
    union all
    select loan_id, customer_id, product, originated_on, principal, paid_total,
           first_30plus_on, first_90plus_on, max_dpd, closed_on
    from revived
    union all
    select loan_id, customer_id, product, originated_on, principal, 0.00::DECIMAL(18, 2),
           null::DATE, null::DATE, 0, null::DATE
    from new_loans
),

paid as (
    select
        b.*,
        (b.paid_total + coalesce(e.amount, 0))::DECIMAL(18, 2) as paid
    from base as b
    left join ledger_events as e using (loan_id)
),

lines as (
    select
        p.loan_id,
        s.due_date,
        s.principal_due + s.interest_due as amount_due,
        -- what the waterfall has put on this instalment, and on its principal
        least(greatest(p.paid - s.cum_before, 0), s.principal_due + s.interest_due) as applied,
        s.principal_due,
        least(greatest(p.paid - s.cum_before - s.interest_due, 0), s.principal_due) as principal_applied
    from paid as p
    join schedule as s using (loan_id)
),

per_loan as (
    select
        loan_id,
        sum(amount_due) as total_due,
        sum(principal_due - principal_applied) as outstanding_principal,
        coalesce(sum(amount_due - applied) filter (where due_date < $d), 0) as overdue_amount,
        min(due_date) filter (where due_date < $d and applied < amount_due) as oldest_overdue_due
    from lines
    group by loan_id
),

positions as (
    select
        p.loan_id,
        p.customer_id,
        p.product,
        p.originated_on,
        p.principal,
        l.total_due::DECIMAL(18, 2) as total_due,
        p.paid as paid_total,
        l.outstanding_principal::DECIMAL(18, 2) as outstanding_principal,
        l.overdue_amount::DECIMAL(18, 2) as overdue_amount,
        greatest(p.paid - l.total_due, 0)::DECIMAL(18, 2) as credit,
        coalesce($d - l.oldest_overdue_due, 0)::INTEGER as dpd,
        p.first_30plus_on,
        p.first_90plus_on,
        p.max_dpd,
        p.closed_on
    from paid as p
    join per_loan as l using (loan_id)
),

final as (
    select
        $d::DATE as dt,
        loan_id,
        customer_id,
        product,
        originated_on,
        cast(date_trunc('month', originated_on) as DATE) as origination_month,
        date_diff('month', date_trunc('month', originated_on), date_trunc('month', $d::DATE))::INTEGER as months_on_book,
        principal,
        total_due,
        paid_total,
        outstanding_principal,
        overdue_amount,
        credit,
        dpd,
        case
            when dpd = 0 then 'M0'
            when dpd <= 30 then 'M1'
            when dpd <= 60 then 'M2'
            when dpd <= 90 then 'M3'
            when dpd <= 120 then 'M4'
            when dpd <= 180 then 'M5'
            else 'M6+'
        end as bucket,
        coalesce(first_30plus_on, case when dpd >= 30 then $d::DATE end) as first_30plus_on,
        coalesce(first_90plus_on, case when dpd >= 90 then $d::DATE end) as first_90plus_on,
        greatest(max_dpd, dpd) as max_dpd,
        -- a repaid loan stays in the state for a while, in case a reversal reopens it
        case when outstanding_principal > 0 then null else coalesce(closed_on, $d::DATE) end as closed_on
    from positions
)

select * from final
