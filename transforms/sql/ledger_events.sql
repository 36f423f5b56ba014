-- Net money applied to each loan by what was delivered after the previous state and up to
-- the business date: successful repayments add, a reversal takes back the successful
-- repayment it names, on the reversal's own date. Failed transactions move nothing.
-- Parameters: $after (exclusive, a date), $d (inclusive).
with repaid as (
    select
        loan_id,
        amount
    from transactions
    where dt > $after
      and dt <= $d
      and txn_type = 'REPAYMENT'
      and status = 'SUCCESS'
),

reversed as (
    select
        r.loan_id,
        -r.amount as amount
    from transactions as v
    join repayments as r
        on r.txn_id = v.reverses_txn_id
    where v.dt > $after
      and v.dt <= $d
      and v.txn_type = 'REVERSAL'
      and v.status = 'SUCCESS'
),

final as (
    select
        loan_id,
        sum(amount) as amount
    from (select * from repaid union all select * from reversed)
    group by loan_id
)

select * from final
