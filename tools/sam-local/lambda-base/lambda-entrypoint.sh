#!/bin/sh
# /lambda-entrypoint.sh of the stand-in, following the official image's contract: one argument, the handler.
# Under `sam local` the emulator is already PID 1 and has set AWS_LAMBDA_RUNTIME_API: run the runtime directly.
# Under a plain `docker run -p 9000:8080 IMAGE` start the emulator ourselves, as the official image does.
if [ $# -ne 1 ]; then
  echo "entrypoint requires the handler name to be the first argument" >&2
  exit 142
fi
export _HANDLER="$1"
if [ -z "${AWS_LAMBDA_RUNTIME_API:-}" ]; then
  exec /usr/local/bin/aws-lambda-rie /var/runtime/bootstrap
fi
exec /var/runtime/bootstrap
