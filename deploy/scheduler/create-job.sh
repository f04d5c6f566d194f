#!/usr/bin/env bash
# Cloud Scheduler → Dataflow Flex Template: launch one akhbar batch run every 15 minutes.
# Fill in launch-body.json (BUCKET, PROJECT, REGION, REPO, TAG) first.
#   PROJECT=my-project REGION=europe-west1 deploy/scheduler/create-job.sh
# The scheduler's service account needs roles/dataflow.developer and to act as the job's
# service account (roles/iam.serviceAccountUser). Cloud Scheduler does not wait for the job:
# if a run can outlast the interval, use the Airflow DAG (max_active_runs=1) instead, since two
# runs on one output at once could both write an article neither had seen stored.
set -euo pipefail
: "${PROJECT:?}" "${REGION:?}"
SCHEDULER_SA="${SCHEDULER_SA:-akhbar-scheduler@${PROJECT}.iam.gserviceaccount.com}"
gcloud scheduler jobs create http akhbar-ingest \
  --project "${PROJECT}" \
  --location "${REGION}" \
  --schedule "*/15 * * * *" \
  --time-zone "Etc/UTC" \
  --http-method POST \
  --uri "https://dataflow.googleapis.com/v1b3/projects/${PROJECT}/locations/${REGION}/flexTemplates:launch" \
  --oauth-service-account-email "${SCHEDULER_SA}" \
  --oauth-token-scope "https://www.googleapis.com/auth/cloud-platform" \
  --headers "Content-Type=application/json" \
  --message-body-from-file "$(dirname "$0")/launch-body.json"
