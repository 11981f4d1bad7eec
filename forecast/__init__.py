"""Load forecasting: the equipment peak forecaster over measured history and the application pipeline."""
