#!/usr/bin/env bash
# The monthly segmentation report from cron: run, gate, email.
#
#   0 6 2 * *  /srv/reportgen/monthly-report.sh >> /var/log/reportgen.log 2>&1
#
# Put this script beside crm.toml (its [input] source names the customer table, its [series]
# name the series) and the secrets in /etc/reportgen/secrets.env, readable by the cron user
# only (chmod 600): REPORT_TO, REPORTGEN_SMTP_HOST, REPORTGEN_SMTP_USER,
# REPORTGEN_SMTP_PASSWORD, REPORTGEN_MAIL_FROM and the database password the source URL uses.
#
# Exit code: 0 sent; 3 sent, but a gate or the drift check failed (the email says which);
# anything else: no report (the log's last line says why).
set -uo pipefail
cd "$(dirname "$0")" || exit 2
# shellcheck source=/dev/null
. /etc/reportgen/secrets.env || exit 2
export REPORTGEN_SMTP_HOST REPORTGEN_SMTP_USER REPORTGEN_SMTP_PASSWORD REPORTGEN_MAIL_FROM

# --json: one JSON object on stdout (run id, run folder, files, segments, gates, changes);
# the progress lines go to the log through stderr.
summary=$(reportgen run --config crm.toml --fail-on-drift --json)
code=$?
if [ "$code" -ne 0 ] && [ "$code" -ne 3 ]; then
    exit "$code"
fi
run_dir=$(printf '%s' "$summary" | python3 -c 'import json, sys; print(json.load(sys.stdin)["run_dir"])')
reportgen email "$run_dir" --to "$REPORT_TO" -q || exit $?
exit "$code"
