-- 30+ delinquency per product, coincident and lagged. The coincident rate divides today's
-- 30+ balance by today's balance; a growing book inflates that denominator with loans too
-- young to be 30+ yet, so the lagged rate divides by the balance 30 days earlier.
with today as (
    select
        product,
        count(*) as accounts,
        sum(outstanding_principal) as balance,
        count(*) filter (where dpd >= 30) as accounts_30plus,
        coalesce(sum(outstanding_principal) filter (where dpd >= 30), 0) as balance_30plus
    from loan_daily
    where dt = $d
      and outstanding_principal > 0
    group by all
),

lagged as (
    select
        product,
        count(*) as accounts_30d_ago,
        sum(outstanding_principal) as balance_30d_ago
    from loan_daily
    where dt = (select max(dt) from ledger_runs where dt <= $d - 30)
      and outstanding_principal > 0
    group by all
),

final as (
    select
        $d::DATE as dt,
        t.product,
        t.accounts,
        t.balance::DECIMAL(18, 2) as balance,
        t.accounts_30plus,
        t.balance_30plus::DECIMAL(18, 2) as balance_30plus,
        (t.balance_30plus / t.balance)::DOUBLE as coincident_30plus_rate,
        t.accounts_30plus / t.accounts as coincident_30plus_account_rate,
        l.balance_30d_ago::DECIMAL(18, 2) as balance_30d_ago,
        (t.balance_30plus / l.balance_30d_ago)::DOUBLE as lagged_30plus_rate,
        t.accounts_30plus / l.accounts_30d_ago as lagged_30plus_account_rate,
        $run_id as run_id
    from today as t
    left join lagged as l using (product)
)

select * from final order by product
