-- pricing_summary for business date $d, by risk grade: tonight's offers against the expected
-- loss and the costs they must cover, and the loans booked in the 30 days to $d against the
-- offer in force when each was booked (loan_offers: the customer's decision of the latest
-- evaluated night before the loan's date). Customers without a model score are grade
-- STARTER; a loan whose customer had no evaluation before it was booked is NO_OFFER. Parameters: $d, $funding and $operating (null
-- without the policy's cost build-up), $cap (max_annual_rate), $run_id.
with tonight as (
    select
        coalesce(risk_grade, 'STARTER') as risk_grade,
        count(*) as customers,
        count(*) filter (where new_limit > 0) as customers_offered,
        -- averages over exact decimals: a float sum's order varies with the threads, and a
        -- rerun must publish the same bytes
        avg(pd::DECIMAL(38, 18))::DOUBLE as mean_pd,
        avg(offered_annual_rate) filter (where new_limit > 0)::DOUBLE as mean_offered_rate,
        avg(expected_loss_rate::DECIMAL(38, 18)) filter (where new_limit > 0)::DOUBLE
            as expected_loss_rate
    from limit_decisions
    where dt = $d
    group by all
),

booked as (
    select loan_id, customer_id, principal, annual_rate
    from loans
    where dt > $d::DATE - 30
      and dt <= $d
),

with_offer as (
    select
        b.*,
        case
            when o.offer_dt is null then 'NO_OFFER'
            else coalesce(o.risk_grade, 'STARTER')
        end as risk_grade,
        o.offered_annual_rate
    from booked as b
    left join loan_offers as o
        on o.loan_id = b.loan_id
       and o.dt > $d::DATE - 30
       and o.dt <= $d
),

originated as (
    select
        risk_grade,
        count(*) as loans_30d,
        sum(principal)::DECIMAL(18, 2) as principal_30d,
        (sum(principal * annual_rate) / sum(principal))::DOUBLE as realised_rate_30d,  -- exact sums
        count(*) filter (where annual_rate < offered_annual_rate) as loans_below_offer_30d,
        count(*) filter (where annual_rate > $cap) as loans_above_cap_30d
    from with_offer
    group by all
),

final as (
    select
        coalesce(t.risk_grade, o.risk_grade) as risk_grade,
        coalesce(t.customers, 0) as customers,
        coalesce(t.customers_offered, 0) as customers_offered,
        t.mean_pd,
        t.mean_offered_rate,
        t.expected_loss_rate,
        $funding::DOUBLE as funding_rate,
        $operating::DOUBLE as operating_rate,
        t.mean_offered_rate - t.expected_loss_rate - $funding::DOUBLE - $operating::DOUBLE as margin,
        coalesce(t.mean_offered_rate - t.expected_loss_rate - $funding::DOUBLE - $operating::DOUBLE < 0, false)
            as negative_margin,
        coalesce(o.loans_30d, 0) as loans_30d,
        coalesce(o.principal_30d, 0)::DECIMAL(18, 2) as principal_30d,
        o.realised_rate_30d,
        coalesce(o.loans_below_offer_30d, 0) as loans_below_offer_30d,
        coalesce(o.loans_above_cap_30d, 0) as loans_above_cap_30d,
        $run_id::VARCHAR as run_id
    from tonight as t
    full outer join originated as o using (risk_grade)
)

select *
from final
order by list_position(['A', 'B', 'C', 'D', 'E', 'F', 'G', 'STARTER', 'NO_OFFER'], risk_grade)
