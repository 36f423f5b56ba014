-- The model target (contract section 2): of the customers with a balance and below
-- $threshold dpd on observation date $t, those who reach dpd >= $threshold on some loan on one
-- of the $window days after $t are bad (1), the others good (0). While the ledger has not
-- reached $t + $window the window is open and the label is null: never counted as good.
with population as (
    select customer_id
    from loan_daily
    where dt = $t
    group by customer_id
    having sum(outstanding_principal) > 0
       and max(dpd) < $threshold
),

matured as (
    select coalesce(max(dt) >= $t + $window, false) as closed from ledger_runs
),

outcome as (
    select
        customer_id,
        max(dpd) >= $threshold as bad
    from loan_daily
    where dt > $t
      and dt <= $t + $window
      and customer_id in (select customer_id from population)
    group by customer_id
),

final as (
    select
        $t::DATE as observation_date,
        p.customer_id,
        case when (select closed from matured) then coalesce(o.bad, false)::INTEGER end as label
    from population as p
    left join outcome as o using (customer_id)
)

select * from final order by customer_id
