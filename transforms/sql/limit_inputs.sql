-- What the limit policy needs of every customer known on $d: attributes as valid on $d,
-- the ledger's state on $d (exact money, in cents), and the limit state left by the latest
-- evaluation before $d (so rerunning $d reads the same state it read the first time).
with customers_at as (
    select
        customer_id,
        (year($d::DATE) - birth_year)::BIGINT as age,
        occupation,
        status,
        kyc_level::BIGINT as kyc_level,
        city_tier::BIGINT as city_tier,
        (declared_monthly_income * 100)::BIGINT as income_cents,
        declared_monthly_income  -- exact, for the record
    from customer_versions
    where valid_from <= $d
      and (valid_to is null or valid_to > $d)
),

ledger_now as (
    select
        customer_id,
        max(dpd)::BIGINT as dpd,
        (sum(outstanding_principal) * 100)::BIGINT as outstanding_cents,
        sum(outstanding_principal)::DECIMAL(18, 2) as outstanding_balance
    from loan_daily
    where dt = $d
    group by customer_id
),

previous as (
    select
        customer_id,
        new_limit::BIGINT as previous_limit,
        increased_on as last_increase_on
    from limit_decisions
    where dt = (select max(dt) from limit_decisions where dt < $d)
)

select
    c.*,
    coalesce(n.dpd, 0) as dpd,
    coalesce(n.outstanding_cents, 0) as outstanding_cents,
    coalesce(n.outstanding_balance, 0)::DECIMAL(18, 2) as outstanding_balance,
    p.previous_limit,
    p.last_increase_on
from customers_at as c
left join ledger_now as n using (customer_id)
left join previous as p using (customer_id)
order by c.customer_id
