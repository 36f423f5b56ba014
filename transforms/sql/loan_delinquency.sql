-- Every loan with an outstanding balance on the business date (contract: loan_delinquency).
select
    loan_id,
    customer_id,
    dt,
    product,
    origination_month,
    months_on_book,
    outstanding_principal,
    overdue_amount,
    dpd,
    bucket,
    $run_id as run_id
from loan_daily
where dt = $d
  and outstanding_principal > 0
order by loan_id
