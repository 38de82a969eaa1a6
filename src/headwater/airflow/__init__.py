"""The thin Airflow layer: Connections -> clients, operators that call the core, the DAG factory."""
