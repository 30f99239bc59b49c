# keel install of lab-node-01 against the same plan run as a plain shell script (keel plan
# --shell: the same commands and files, without keel's checks, journal and logs), one after the
# other on the same drives in one boot. Prints both wall times and their ratio.
. ./scenarios/lib.sh
rescue_network
now() { date +%s.%N; }
t0=$(now)
./keel install --profile profiles/lab-node-01.toml --yes --confirm-serials "$SERIALS" \
  --journal-dir $JOURNALS --progress plain >/tmp/keel.txt 2>&1
rc_keel=$?
t1=$(now)
grep -A70 '^step times' /tmp/keel.txt
# the plan made now names the partitions keel made, so the script wipes them first, as keel did
./keel plan --profile profiles/lab-node-01.toml --shell >/tmp/plan.sh 2>/tmp/plan.err
# each step's "== STEP" line also prints the time (one date per step), for the table below
sed 's/^echo "== \([a-z0-9.-]*\)"$/echo "== \1 $(date +%s.%N)"/' /tmp/plan.sh >/tmp/plan-timed.sh
t2=$(now)
KEEL=./keel sh /tmp/plan-timed.sh >/tmp/shell.txt 2>&1
rc_shell=$?
t3=$(now)
tail -5 /tmp/shell.txt
echo "shell script step times (seconds):"
awk -v end="$t3" '/^== [a-z0-9.-]+ [0-9.]+$/ { if (name != "") step(name, $3 - t); name = $2; t = $3 }
  function step(n, d,  ph) { printf "  %-22s %8.1f\n", n, d; ph = n; sub(/\..*/, "", ph); if (!(ph in sum)) order[++k] = ph; sum[ph] += d }
  END { if (name != "") step(name, end - t); print "shell script phase times (seconds):"; for (i = 1; i <= k; i++) printf "  %-10s %8.1f\n", order[i], sum[order[i]] }' /tmp/shell.txt \
  | tee /tmp/shell-phases.txt
zpool export datapool 2>/dev/null; zpool export rpool 2>/dev/null
# per phase: keel's table beside the script's, and keel's own time (outside any command)
awk '/^ *phase times/ {on=1; next} on && /^ *PHASE/ {next} on && NF==2 && $2 ~ /^[0-9.]+$/ {print $1, $2; next} on {on=0}' /tmp/keel.txt >/tmp/keel-phases.txt
echo "per phase, seconds (keel's step table; the script's from its step lines):"
printf '  %-10s %9s %9s %9s\n' PHASE KEEL SCRIPT RATIO
awk '/^shell script phase times/ {on=1; next} on && NF==2 {print $1, $2}' /tmp/shell-phases.txt >/tmp/script-phases.txt
awk 'NR == FNR { sc[$1] = $2; next } $1 != "total" { printf "  %-10s %9.1f %9s %9s\n", $1, $2, ($1 in sc) ? sc[$1] : "-", ($1 in sc && sc[$1] > 0) ? sprintf("%.3f", $2 / sc[$1]) : "-" }' \
  /tmp/script-phases.txt /tmp/keel-phases.txt
grep '^time of this run: ' /tmp/keel.txt | sed 's/^time of this run: /bench: keel /'
equals "keel install exit code" 0 "$rc_keel"
equals "shell script exit code" 0 "$rc_shell"
awk -v t0="$t0" -v t1="$t1" -v t2="$t2" -v t3="$t3" \
  'BEGIN { k = t1 - t0; s = t3 - t2; printf "bench: keel install %.1f s, plain shell script %.1f s, ratio keel/shell %.3f\n", k, s, k / s }'
finish
