"""Airflow example: one akhbar batch run on Dataflow every 15 minutes, from the Flex Template.

Needs apache-airflow-providers-google. Set the Airflow Variables AKHBAR_PROJECT, AKHBAR_REGION,
AKHBAR_BUCKET, AKHBAR_TEMPLATE (gs://…/templates/akhbar-TAG.json) and AKHBAR_IMAGE (the image
built by deploy/dataflow/build.sh). max_active_runs=1: runs on one output never overlap (a batch
run only writes what is not stored yet, which holds only if no other run is writing meanwhile).
"""
from __future__ import annotations

from datetime import datetime, timedelta

from airflow import DAG
from airflow.providers.google.cloud.operators.dataflow import DataflowStartFlexTemplateOperator

PROJECT = "{{ var.value.AKHBAR_PROJECT }}"
REGION = "{{ var.value.AKHBAR_REGION }}"
BUCKET = "{{ var.value.AKHBAR_BUCKET }}"

with DAG(
    dag_id="akhbar_ingest",
    start_date=datetime(2026, 1, 1),
    schedule=timedelta(minutes=15),
    catchup=False,
    max_active_runs=1,
    default_args={"retries": 1, "retry_delay": timedelta(minutes=5)},
    tags=["akhbar"],
) as dag:
    DataflowStartFlexTemplateOperator(
        task_id="akhbar_run",
        project_id=PROJECT,
        location=REGION,
        wait_until_finished=True,
        body={
            "launchParameter": {
                "jobName": "akhbar-{{ ts_nodash | lower }}",
                "containerSpecGcsPath": "{{ var.value.AKHBAR_TEMPLATE }}",
                "parameters": {
                    "sources": f"gs://{BUCKET}/akhbar/sources.yaml",
                    "output": f"gs://{BUCKET}/akhbar/out",
                    "fetch_concurrency": "8",
                },
                "environment": {
                    "tempLocation": f"gs://{BUCKET}/tmp",
                    "stagingLocation": f"gs://{BUCKET}/staging",
                    "machineType": "e2-standard-2",
                    "numWorkers": 1,
                    "maxWorkers": 4,
                    "sdkContainerImage": "{{ var.value.AKHBAR_IMAGE }}",
                    "additionalExperiments": ["use_runner_v2"],
                },
            }
        },
    )
