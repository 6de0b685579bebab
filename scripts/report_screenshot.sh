#!/usr/bin/env bash
# Screenshot a Snakemake HTML report in a real headless browser (Debian's
# Chromium), to check by eye what a person sees.
#
# usage: scripts/report_screenshot.sh REPORT.html OUT.png [VIEW]
#
#   VIEW   start     the report's start page (default)
#          summary   the "Run summary" category showing the summary table
#          fov:NNN   the "FOV NNN" category showing that FOV's overlay figure
#          SAMPLE/summary, SAMPLE/fov:NNN   the same for one sample of a
#                    sample sheet (categories "SAMPLE / FOV NNN")
#
# A view the report does not have is refused (exit 2) with the report's
# categories, before Chromium starts: never a silent start page.
# The report is a single-page app whose views are not addressable by URL, so
# for a VIEW other than `start` a copy of the report (in a temporary folder;
# the report itself is not touched) gets a script that opens the category and
# the result as a click would.
#
# Chromium is installed with apt-get when missing (needs root). Exit status:
# 0 screenshot written, 2 usage error, 3 Chromium missing and not installable,
# anything else: Chromium failed.
set -euo pipefail

usage() {
  sed -n '5,11p' "$0" >&2
  exit 2
}
[[ $# -ge 2 && $# -le 3 ]] || usage
report=$1
out=$2
view=${3:-start}
[[ -f $report ]] || { echo "report_screenshot: no such file: $report" >&2; exit 2; }

# the view: the category and the result to open, checked against the report
category=""
case $view in
  start) ;;
  *summary | *fov:*)
    sample=""
    rest=$view
    if [[ $view == */* ]]; then
      sample=${view%%/*}
      rest=${view#*/}
    fi
    prefix=${sample:+$sample / }
    where=${sample:+$sample/}
    if [[ $rest == summary ]]; then
      category="${prefix}Run summary"; suffix="${where}qc/summary.html"; content="html"
    elif [[ $rest =~ ^fov:([0-9]+)$ ]]; then
      fov=${BASH_REMATCH[1]}
      category="${prefix}FOV $fov"; suffix="${where}qc/fov_${fov}_overlay.png"; content="img"
    else
      usage
    fi
    if ! grep -qF "\"$category\"" "$report"; then
      have=$(grep -oE '"([A-Za-z0-9._-]+ / )?(FOV [0-9]+|Run summary)"' "$report" \
        | tr -d '"' | sort -u | paste -sd, - | sed 's/,/, /g' || true)
      echo "report_screenshot: the report has no category '$category'; its categories: ${have:-none}" >&2
      first=$(grep -oE '"[A-Za-z0-9._-]+ / (FOV [0-9]+|Run summary)"' "$report" | head -1 | tr -d '"' || true)
      if [[ -n $first && -z $sample ]]; then
        echo "report_screenshot: a sample sheet's report names the sample in the view, e.g. ${first%% / *}/$view" >&2
      fi
      exit 2
    fi
    ;;
  *) usage ;;
esac

find_chromium() {
  command -v chromium || command -v chromium-browser || true
}

browser=$(find_chromium)
if [[ -z $browser ]]; then
  if [[ $(id -u) -eq 0 ]] && command -v apt-get >/dev/null; then
    echo "report_screenshot: installing Debian's chromium" >&2
    # one apt-get at a time (scripts/slurm/local_slurm.sh takes the same lock)
    flock -w 1200 /var/lock/pyama-steps-apt.lock \
      apt-get -o DPkg::Lock::Timeout=600 update -qq >&2 || true
    DEBIAN_FRONTEND=noninteractive flock -w 1200 /var/lock/pyama-steps-apt.lock \
      apt-get -o DPkg::Lock::Timeout=600 install -y --no-install-recommends chromium >&2 || true
    browser=$(find_chromium)
  fi
  if [[ -z $browser ]]; then
    echo "report_screenshot: chromium is not installed and cannot be installed here" >&2
    exit 3
  fi
fi

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

page=$report
case $view in
  start) ;;
  *)
    page=$work/report.html
    # the report's own closing tag is its last "</body>" (the bundled
    # libraries contain the string too)
    end=$(grep -n '</body>' "$report" | tail -1 | cut -d: -f1)
    [[ -n $end ]] || { echo "report_screenshot: no </body> in $report" >&2; exit 2; }
    # `app` and `results` are globals of Snakemake's report (app.js); the
    # timer runs once React has rendered the start page.
    {
      head -n "$((end - 1))" "$report"
      cat <<EOF
<script>
setTimeout(function () {
  var key = Object.keys(results).find(function (k) { return k.endsWith("$suffix"); });
  if (key === undefined) {
    document.body.innerHTML = "<h1>report_screenshot: no result ending in $suffix</h1>";
    return;
  }
  // as two clicks: the category in the menu, then the result's eye button
  app.showCategory("$category");
  setTimeout(function () {
    app.setView({ content: "$content", contentPath: results[key].data_uri, resultPath: key });
  }, 500);
}, 500);
</script>
</body>
</html>
EOF
    } >"$page"
    ;;
esac

mkdir -p "$(dirname "$out")"
rm -f "$out"
abs_page=$(cd "$(dirname "$page")" && pwd)/$(basename "$page")
abs_out=$(cd "$(dirname "$out")" && pwd)/$(basename "$out")
# --virtual-time-budget lets the page's scripts and timers run before the
# screenshot is taken; timeout guards against a browser that never exits.
timeout 180 "$browser" --headless --no-sandbox --disable-gpu --disable-quic \
  --no-first-run --disable-background-networking --disable-component-update \
  --disable-sync --user-data-dir="$work/profile" --hide-scrollbars \
  --window-size=1400,1000 --virtual-time-budget=10000 \
  --screenshot="$abs_out" "file://$abs_page" >"$work/chromium.log" 2>&1 || {
  status=$?
  tail -20 "$work/chromium.log" >&2
  exit "$status"
}
if [[ ! -s $abs_out ]]; then
  echo "report_screenshot: chromium wrote no screenshot" >&2
  tail -20 "$work/chromium.log" >&2
  exit 1
fi
echo "$abs_out"
