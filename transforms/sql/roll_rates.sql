-- Where the loans with a balance 30 days ago are today. A loan repaid since rolls to
-- 'CLOSED'. Rates are shares of the from-bucket, by accounts and by the from-balance (the
-- outstanding principal 30 days ago), so each from-bucket's rates sum to 1.
with from_date as (
    select max(dt) as dt from ledger_runs where dt <= $d - 30
),

from_state as (
    select
        loan_id,
        bucket as from_bucket,
        outstanding_principal as from_balance
    from loan_daily
    where dt = (select dt from from_date)
      and outstanding_principal > 0
),

to_state as (
    select
        loan_id,
        bucket as to_bucket
    from loan_daily
    where dt = $d
      and outstanding_principal > 0
),

moves as (
    select
        f.from_bucket,
        coalesce(t.to_bucket, 'CLOSED') as to_bucket,
        f.from_balance
    from from_state as f
    left join to_state as t using (loan_id)
),

counts as (
    select
        from_bucket,
        to_bucket,
        count(*) as accounts,
        sum(from_balance) as balance
    from moves
    group by all
),

final as (
    select
        $d::DATE as dt,
        from_bucket,
        to_bucket,
        accounts,
        balance::DECIMAL(18, 2) as balance,
        accounts / sum(accounts) over (partition by from_bucket) as account_rate,
        (balance / sum(balance) over (partition by from_bucket))::DOUBLE as balance_rate,
        $run_id as run_id
    from counts
)

select * from final order by from_bucket, to_bucket
