-- Vintage curves: of the loans originated in a month, the share (by count and by principal)
-- that had ever been 30+ (90+) days past due by the end of each month on book. Cells after
-- the report date are null, not zero; the current month counts up to the report date.
with active as (
    select loan_id, origination_month, principal, first_30plus_on, first_90plus_on
    from loan_daily
    where dt = $d
),

archived as (
    select loan_id, origination_month, principal, first_30plus_on, first_90plus_on
    from loan_archive
    where archived_on <= $d
      and loan_id not in (select loan_id from active)
    qualify row_number() over (partition by loan_id order by archived_on desc) = 1
),

outcomes as (
    select * from active
    union all
    select * from archived
),

vintages as (
    select
        origination_month,
        count(*) as loans,
        sum(principal) as principal
    from outcomes
    group by all
),

report_month as (
    select cast(date_trunc('month', $d::DATE) as DATE) as m
),

grid as (
    select
        v.origination_month,
        v.loans,
        v.principal,
        mob.mob::INTEGER as months_on_book
    from vintages as v
    cross join range(0, (select date_diff('month', min(origination_month), (select m from report_month)) + 1 from vintages)) as mob(mob)
),

hits as (
    -- the month on book in which each loan first reached 30+ / 90+ (as known on the date)
    select
        origination_month,
        date_diff('month', origination_month, date_trunc('month', first_30plus_on))::INTEGER as mob_30,
        case when first_90plus_on <= $d then date_diff('month', origination_month, date_trunc('month', first_90plus_on))::INTEGER end as mob_90,
        principal
    from outcomes
    where first_30plus_on <= $d
),

per_mob as (
    select
        g.origination_month,
        g.months_on_book,
        g.loans,
        g.principal,
        count(h.mob_30) filter (where h.mob_30 = g.months_on_book) as new_30,
        coalesce(sum(h.principal) filter (where h.mob_30 = g.months_on_book), 0) as new_30_principal,
        count(h.mob_90) filter (where h.mob_90 = g.months_on_book) as new_90,
        coalesce(sum(h.principal) filter (where h.mob_90 = g.months_on_book), 0) as new_90_principal
    from grid as g
    left join hits as h
        on h.origination_month = g.origination_month
       and (h.mob_30 = g.months_on_book or h.mob_90 = g.months_on_book)
    group by all
),

cumulative as (
    select
        *,
        sum(new_30) over w as ever_30,
        sum(new_30_principal) over w as ever_30_principal,
        sum(new_90) over w as ever_90,
        sum(new_90_principal) over w as ever_90_principal,
        cast(origination_month + to_months(months_on_book) as DATE) > (select m from report_month) as after_report
    from per_mob
    window w as (partition by origination_month order by months_on_book)
),

final as (
    select
        $d::DATE as dt,
        origination_month,
        months_on_book,
        loans,
        principal::DECIMAL(18, 2) as principal,
        case when not after_report then ever_30 / loans end as ever_30plus_rate,
        case when not after_report then ever_90 / loans end as ever_90plus_rate,
        case when not after_report then (ever_30_principal / principal)::DOUBLE end as ever_30plus_rate_principal,
        case when not after_report then (ever_90_principal / principal)::DOUBLE end as ever_90plus_rate_principal,
        $run_id as run_id
    from cumulative
)

select * from final order by origination_month, months_on_book
