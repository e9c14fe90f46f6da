SELECT study, model_label AS model, latent_dim AS latent, loss_label AS loss, count(*) AS n,
  count(*) FILTER (abs(final_train_mse - 0) <= 1/64) AS "0 (optimum)",
  count(*) FILTER (abs(final_train_mse - 1/16) <= 1/64) AS "1/16",
  count(*) FILTER (abs(final_train_mse - 1/8) <= 1/64) AS "1/8",
  count(*) FILTER (abs(final_train_mse - 1/6) <= 1/64) AS "1/6",
  count(*) FILTER (abs(final_train_mse - 1/4) <= 1/64) AS "1/4",
  count(*) FILTER (status <> 'complete') AS failed,
  round(median(final_train_mse), 4) AS median_mse
FROM trials WHERE dataset = 'lines2x2' GROUP BY ALL ORDER BY ALL
