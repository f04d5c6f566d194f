#!/usr/bin/env bash
# Launch one batch run from the template built by build.sh.
#   PROJECT=my-project REGION=europe-west1 BUCKET=my-bucket TAG=abc1234 IMAGE=… deploy/dataflow/run.sh
set -euo pipefail
: "${PROJECT:?}" "${REGION:?}" "${BUCKET:?}" "${TAG:?}" "${IMAGE:?}"
gcloud dataflow flex-template run "akhbar-$(date -u +%Y%m%d-%H%M%S)" \
  --project "${PROJECT}" \
  --region "${REGION}" \
  --template-file-gcs-location "gs://${BUCKET}/templates/akhbar-${TAG}.json" \
  --temp-location "gs://${BUCKET}/tmp" \
  --staging-location "gs://${BUCKET}/staging" \
  --service-account-email "${SERVICE_ACCOUNT:-akhbar@${PROJECT}.iam.gserviceaccount.com}" \
  --worker-machine-type "${MACHINE_TYPE:-e2-standard-2}" \
  --num-workers "${NUM_WORKERS:-1}" \
  --max-workers "${MAX_WORKERS:-4}" \
  --additional-experiments "use_runner_v2" \
  --additional-pipeline-options "sdk_container_image=${IMAGE},autoscaling_algorithm=THROUGHPUT_BASED" \
  --parameters "sources=gs://${BUCKET}/akhbar/sources.yaml" \
  --parameters "output=gs://${BUCKET}/akhbar/out" \
  --parameters "fetch_concurrency=${FETCH_CONCURRENCY:-8}" \
  --parameters "user_agent=${USER_AGENT:-akhbar/0.1 (+https://example.org/contact)}"
