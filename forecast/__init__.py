"""Load forecasting: the equipment peak forecaster over measured history and the application pipeline.

Layers, each usable alone:
- model.forecast_series: any evenly spaced series and a horizon -> means, intervals and the model's name
  (statsforecast MSTL + AutoETS). Every forecast goes through it, the backtests included, but for the
  EV-growth projection: five yearly values are too few for it (ev_growth says what it uses instead).
- history.monthly_peaks: daily peaks -> the run of complete monthly peaks the model takes.
- inputs: the database reads (complete days' peaks, the pipeline's reservations with their case), for one
  piece of equipment or a chunk of them.
- equipment: both combined into an EquipmentForecast (kVA), or InsufficientHistoryError with the reason.
- config: the settings of forecast/forecast.yaml.
- applied, demand: the cases' applications per month by supply unit, GB/T 4754 section and load type, and
  their forecast (DemandForecast).
- load_share (curves reads the stored profiles): a summer-only load's share of a group's peak and its hours.
- ev_growth: EV-charging applications and kVA per year, the growth rate and a projection.
- demand_config: the settings of forecast/demand.yaml.
- limits: what each piece of equipment may carry, by the feasibility rules.
- alerts: the first forecast month over the limit, published once per crossing (planning alerts).
- refresh: every feeder, transformer and substation forecast in chunks, kept, and alerted on; the hub
  duty that runs it on schedule.
- report: the alerts as `yekuo report forecast` prints them.
"""
