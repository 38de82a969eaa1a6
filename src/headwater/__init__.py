"""headwater: config-driven data platform on Apache Airflow 3."""
