-- Accounts and outstanding principal by product, city tier and bucket. Every bucket appears
-- for every segment present (zeros included), so stacked charts need no gap filling.
-- pct_* are shares within the segment (product x city tier).
with book as (
    select
        l.product,
        c.city_tier,  -- as known on the date; null if the customer record is missing
        l.bucket,
        l.outstanding_principal
    from loan_daily as l
    left join customer_versions as c
        on c.customer_id = l.customer_id
       and c.valid_from <= $d
       and (c.valid_to is null or c.valid_to > $d)
    where l.dt = $d
      and l.outstanding_principal > 0
),

segments as (
    select distinct product, city_tier from book
),

buckets as (
    select unnest(['M0', 'M1', 'M2', 'M3', 'M4', 'M5', 'M6+']) as bucket
),

counts as (
    select
        product,
        city_tier,
        bucket,
        count(*) as accounts,
        sum(outstanding_principal) as balance
    from book
    group by all
),

final as (
    select
        $d::DATE as dt,
        s.product,
        s.city_tier,
        b.bucket,
        coalesce(c.accounts, 0) as accounts,
        coalesce(c.balance, 0)::DECIMAL(18, 2) as balance,
        coalesce(c.accounts, 0) / sum(coalesce(c.accounts, 0)) over (partition by s.product, s.city_tier) as pct_accounts,
        (coalesce(c.balance, 0) / sum(coalesce(c.balance, 0)) over (partition by s.product, s.city_tier))::DOUBLE as pct_balance,
        $run_id as run_id
    from segments as s
    cross join buckets as b
    left join counts as c
        on c.product = s.product
       and c.city_tier is not distinct from s.city_tier
       and c.bucket = b.bucket
)

select * from final order by product, city_tier, bucket
