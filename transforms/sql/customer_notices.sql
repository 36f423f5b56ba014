-- The notices of business date $d for the messaging system, before their send times and
-- templates (policy.notices adds those). One row per notice:
--   DUE_SOON / DUE_TODAY  an instalment due $due_soon days (or 0 days) after the day the
--                         notices go out ($d + 1) with an unpaid amount at the end of $d:
--                         its principal and interest not yet covered by the waterfall
--   AUTO_DEBIT_FAILED     a failed auto-debit, or a reversal of a repayment, delivered on $d
--                         (the amounts summed per loan)
--   OVERDUE               a loan of loan_delinquency on $d whose dpd is one of $overdue
--   LIMIT_*               the night's limit decisions; NEW only above 0, UNCHANGED never.
--                         FREEZE and CLOSE when the state starts (first evaluation, a limit
--                         above 0 before, another action or rule before), or on every such
--                         decision when $every_decision
-- No notice goes to a customer whose status is CLOSED and who owes nothing on $d.
with loans_now as (
    select loan_id, customer_id, paid_total, total_due, outstanding_principal, overdue_amount, dpd
    from loan_daily
    where dt = $d
),

lines as (
    select loan_id, installment_no, due_date, principal_due, interest_due, cum_before
    from schedule
    where dt <= $d
),

due as (
    select
        case when s.due_date = $d::DATE + 1 then 'DUE_TODAY' else 'DUE_SOON' end as notice_type,
        l.customer_id,
        l.loan_id,
        s.installment_no,
        s.due_date,
        -- the contract's waterfall: what the net amount paid has not yet covered of this line
        (s.principal_due + s.interest_due
            - least(greatest(l.paid_total - s.cum_before, 0), s.principal_due + s.interest_due)
        )::DECIMAL(18, 2) as amount_due,
        null::INTEGER as dpd
    from loans_now as l
    join lines as s using (loan_id)
    where s.due_date - ($d::DATE + 1) in (select unnest($due_soon::INTEGER[]) union all select 0)
),

debit_failures as (
    select customer_id, loan_id, amount
    from transactions
    where dt = $d
      and txn_type = 'REPAYMENT'
      and channel = 'AUTO_DEBIT'
      and status = 'FAILED'
    union all
    select v.customer_id, r.loan_id, r.amount
    from transactions as v
    join repayments as r on r.txn_id = v.reverses_txn_id
    where v.dt = $d
      and v.txn_type = 'REVERSAL'
      and v.status = 'SUCCESS'
),

debit_failed as (
    select
        'AUTO_DEBIT_FAILED' as notice_type,
        customer_id,
        loan_id,
        null::INTEGER as installment_no,
        null::DATE as due_date,
        sum(amount)::DECIMAL(18, 2) as amount_due,
        null::INTEGER as dpd
    from debit_failures
    group by customer_id, loan_id
),

overdue as (
    select
        'OVERDUE' as notice_type,
        l.customer_id,
        l.loan_id,
        s.installment_no,
        ($d::DATE - l.dpd)::DATE as due_date,  -- the oldest overdue instalment's
        l.overdue_amount::DECIMAL(18, 2) as amount_due,
        l.dpd::INTEGER as dpd
    from loans_now as l
    left join lines as s
        on s.loan_id = l.loan_id
       and s.due_date = $d::DATE - l.dpd
    where l.outstanding_principal > 0  -- as loan_delinquency
      and l.dpd in (select unnest($overdue::INTEGER[]))
),

ledger_notices as (
    select
        *,
        null::DECIMAL(18, 2) as previous_limit,
        null::DECIMAL(18, 2) as new_limit,
        null::DECIMAL(8, 6) as offered_annual_rate,
        ($d::DATE + 1)::DATE as effective_from,
        []::VARCHAR[] as reasons
    from (
        select * from due where amount_due > 0
        union all by name
        select * from debit_failed
        union all by name
        select * from overdue
    )
),

tonight as (
    select * from limit_decisions where dt = $d
),

before as (
    select customer_id, action, policy_rule
    from limit_decisions
    where dt = (select max(dt) from limit_decisions where dt < $d)
),

limit_notices as (
    select
        'LIMIT_' || t.action as notice_type,
        t.customer_id,
        null::VARCHAR as loan_id,
        null::INTEGER as installment_no,
        null::DATE as due_date,
        null::DECIMAL(18, 2) as amount_due,
        null::INTEGER as dpd,
        t.previous_limit::DECIMAL(18, 2) as previous_limit,
        t.new_limit::DECIMAL(18, 2) as new_limit,
        t.offered_annual_rate,
        t.effective_from,
        t.reason_codes as reasons
    from tonight as t
    left join before as b using (customer_id)
    where t.action in ('INCREASE', 'DECREASE')
       or (t.action = 'NEW' and t.new_limit > 0)
       or (t.action in ('FREEZE', 'CLOSE') and (
            $every_decision
            or b.customer_id is null
            or coalesce(t.previous_limit, 0) > 0
            or b.action <> t.action
            or b.policy_rule <> t.policy_rule
       ))
),

closed_quiet as (
    select customer_id
    from customer_versions
    where valid_from <= $d
      and (valid_to is null or valid_to > $d)
      and status = 'CLOSED'
      and customer_id not in (
          select customer_id from loans_now where total_due > paid_total
      )
),

final as (
    select
        n.notice_type,
        n.customer_id,
        n.loan_id,
        n.installment_no,
        n.due_date,
        n.amount_due,
        n.dpd,
        n.previous_limit,
        n.new_limit,
        n.offered_annual_rate,
        n.effective_from,
        n.reasons
    from (
        select * from ledger_notices
        union all by name
        select * from limit_notices
    ) as n
    where n.customer_id not in (select customer_id from closed_quiet)
)

select
    -- stable across reruns: the same customer, type, loan, instalment and event date give
    -- the same id, so a sender can de-duplicate
    -- (hashed as a JSON list, so no id's own characters can make two keys alike)
    left(sha256(to_json([customer_id, notice_type, loan_id, installment_no::VARCHAR,
        strftime($d::DATE, '%Y-%m-%d')])::VARCHAR), 32) as notice_id,
    *
from final
order by notice_id
