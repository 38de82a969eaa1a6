"""Operating headwater: local Airflow components, the REST API, running the chain."""
