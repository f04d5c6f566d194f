#!/usr/bin/env bash
# Build the image, push it and write the Flex Template spec to GCS.
#   PROJECT=my-project REGION=europe-west1 REPO=akhbar BUCKET=my-bucket deploy/dataflow/build.sh
set -euo pipefail
: "${PROJECT:?}" "${REGION:?}" "${REPO:?}" "${BUCKET:?}"
TAG="${TAG:-$(git rev-parse --short HEAD)}"
IMAGE="${REGION}-docker.pkg.dev/${PROJECT}/${REPO}/akhbar:${TAG}"
ROOT="$(cd "$(dirname "$0")/../.." && pwd)"

docker build -f "${ROOT}/deploy/dataflow/Dockerfile" -t "${IMAGE}" "${ROOT}"
docker push "${IMAGE}"
gcloud dataflow flex-template build "gs://${BUCKET}/templates/akhbar-${TAG}.json" \
  --project "${PROJECT}" \
  --image "${IMAGE}" \
  --sdk-language PYTHON \
  --metadata-file "${ROOT}/deploy/dataflow/metadata.json"
echo "template: gs://${BUCKET}/templates/akhbar-${TAG}.json"
echo "image:    ${IMAGE}"
