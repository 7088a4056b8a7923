#!/usr/bin/env bash
# Mutation testing (mutmut 3) of the privacy-critical modules: one module at a time,
# each mutant checked against that module's own tests only (tests/mutation/targets.tsv).
# Not part of CI (issue #20). Results: docs/testing.md, "Mutation testing".
#
#   tests/mutation/run.sh                       # every `numpy` row of targets.tsv
#   tests/mutation/run.sh tfpriv/dp/clipping.py  # the named module(s), any row
#   python tests/mutation/summary.py            # the per-module table of the last runs
#
# A row's optional fourth column lists mutmut name patterns (fnmatch, e.g.
# `*_privatize*`): only the mutants of the matching functions are run (the noise, clipping
# and sampling code of a large TF module); the others are reported as "not targeted".
# mutmut lives in its own venv (MUT_VENV, default .venv-mut), created on first use; a
# .pth file lets it import the project's pinned stack from MAIN_VENV (default .venv)
# without installing anything there. Each module runs in a copy of the tree under
# MUT_WORK (default /tmp/tfpriv-mutation/<module>); MUT_BUDGET caps a module's wall time
# (seconds, default 3600), MUT_CHILDREN its parallel mutants (default 1). MUT_RESUME=1
# keeps an existing work folder, so mutmut continues with the mutants not yet checked
# (after a budget ran out); otherwise each run starts from a fresh copy of the tree.
# MUT_RERUN=1 copies the current tests into the existing work folder and re-runs only the
# mutants that survived, had no tests or were not checked there (after tests were written to
# kill them), with the rest of the library refreshed from the current tree (the mutated
# module must be unchanged); MUT_RERUN_MATCH (an extended regex on mutant names) narrows
# that set. MUT_ONLY (mutmut name patterns) replaces a row's fourth column for one run, e.g.
# the functions a change touched.
# Tests that read MNIST find it through $KERAS_HOME/datasets/mnist.npz (tests/conftest.py).
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/../.." && pwd)"
MAIN_VENV="${MAIN_VENV:-$ROOT/.venv}"
MUT_VENV="${MUT_VENV:-$ROOT/.venv-mut}"
MUT_WORK="${MUT_WORK:-/tmp/tfpriv-mutation}"
MUT_BUDGET="${MUT_BUDGET:-3600}"
MUT_CHILDREN="${MUT_CHILDREN:-1}"
TARGETS="$ROOT/tests/mutation/targets.tsv"

setup_venv() {
  local python site
  python="$(readlink -f "$MAIN_VENV/bin/python")"
  "$python" -m venv "$MUT_VENV"
  "$MUT_VENV/bin/pip" install -q 'mutmut==3.8.1' 'pytest==8.3.5'
  site="$("$MAIN_VENV/bin/python" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')"
  echo "$site" > "$("$MUT_VENV/bin/python" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')/zz_project_stack.pth"
}

run_module() {  # run_module MODULE KIND "PATTERNS" TESTS...
  local module="$1" kind="$2" patterns="$3"; shift 3
  local work="$MUT_WORK/$(echo "$module" | tr / _ | sed 's/\.py$//')"
  if [ "${MUT_RERUN:-0}" = 1 ] && [ -f "$work/results.txt" ]; then
    [ -f "$work/results-first.txt" ] || cp "$work/results.txt" "$work/results-first.txt"
    if ! cmp -s "$ROOT/$module" "$work/$module"; then
      echo "== $module changed since $work was made: run it afresh (without MUT_RERUN)"; return 0
    fi
    rm -rf "$work/tests" && cp -r "$ROOT/tests" "$work/"
    # the rest of the library as it is now (the mutated module itself is unchanged)
    (cd "$ROOT" && find tfpriv -name '*.py' ! -path "$module") | while read -r file; do
      for dest in "$work" "$work/mutants"; do
        mkdir -p "$dest/$(dirname "$file")" && cp "$ROOT/$file" "$dest/$file"
      done
    done
    find "$work/tests" -name __pycache__ -prune -exec rm -rf {} +
    patterns="$(awk -F': ' '$2 == "survived" || $2 == "no tests" || $2 == "not checked" \
                {gsub(/ /, "", $1); print $1}' "$work/results.txt" \
                | grep -E -- "${MUT_RERUN_MATCH:-.}" | tr '\n' ' ' || true)"
    echo "== re-running the survivors of $module in $work"
    [ -n "$patterns" ] || return 0
  elif [ "${MUT_RESUME:-0}" = 1 ] && [ -d "$work/mutants" ]; then
    echo "== resuming $module in $work"
  else
    rm -rf "$work" && mkdir -p "$work"
    cp -r "$ROOT/tfpriv" "$ROOT/tests" "$ROOT/setup.cfg" "$work/"
    find "$work" -name __pycache__ -prune -exec rm -rf {} +
  fi
  {
    echo '[tool.mutmut]'
    echo 'source_paths = ["tfpriv"]'
    echo "only_mutate = [\"$module\"]"
    printf 'pytest_add_cli_args_test_selection = [%s]\n' "$(printf '"%s",' "$@" | sed 's/,$//')"
    echo 'pytest_add_cli_args = ["-p", "no:randomly", "-x", "-q"]'
    echo 'timeout_multiplier = 5.0'
    echo 'timeout_constant = 30.0'
    echo 'use_git_change_detection = false'
    if [ "$kind" = tf ]; then
      # TensorFlow's runtime threads do not survive fork() once ops have run: each mutant
      # forks from a server that has only imported the tests (pytest --collect-only).
      echo 'process_isolation = "forkserver"'
      echo 'forkserver_warmup = "collect"'
    fi
  } > "$work/pyproject.toml"
  [ "${MUT_RERUN:-0}" = 1 ] || echo "$patterns" | tr ' ' '\n' | sed '/^$/d' > "$work/patterns.txt"
  if [ "$kind" = tf ] && (cd "$work" && env PYTHONPATH="$ROOT/tests/mutation" "$MAIN_VENV/bin/python" \
       -m pytest -q --collect-only -p no:randomly -p tf_at_collection "$@" 2>/dev/null \
       | grep '^tf_at_collection:' > /dev/null); then
    echo "== warning: collecting these tests starts TensorFlow's runtime; forked mutants may hang" \
         "and count as timeouts (tests/mutation/tf_at_collection.py)"
  fi
  echo "== $module ($*) ${patterns:+[only $patterns] }in $work"
  # shellcheck disable=SC2086
  (set -f; cd "$work" && env -u PYTHONPATH TFPRIV_HYPOTHESIS_PROFILE=ci \
     nice -n 10 timeout "$MUT_BUDGET" "$MUT_VENV/bin/mutmut" run --max-children "$MUT_CHILDREN" \
     $patterns > run.log 2>&1 || echo "mutmut exit $? (see $work/run.log)")
  (cd "$work" && "$MUT_VENV/bin/mutmut" results --all true > results.txt 2>/dev/null || true
   : > survivors.diff
   for name in $(awk -F': ' '$2 == "survived" {gsub(/ /, "", $1); print $1}' results.txt); do
     "$MUT_VENV/bin/mutmut" show "$name" >> survivors.diff 2>/dev/null || true
   done)
  echo "$module" > "$work/module.txt"
  awk -F': ' '{n[$2]++} END {for (s in n) printf "   %s: %d\n", s, n[s]}' "$work/results.txt"
}

[ -x "$MUT_VENV/bin/mutmut" ] || setup_venv
wanted=("$@")
while IFS=$'\t' read -r module tests kind patterns; do
  [[ -z "$module" || "$module" == \#* ]] && continue
  if [ ${#wanted[@]} -eq 0 ]; then
    [ "$kind" = numpy ] || continue
  else
    [[ " ${wanted[*]} " == *" $module "* ]] || continue
  fi
  # shellcheck disable=SC2086
  run_module "$module" "$kind" "${MUT_ONLY:-${patterns:-}}" $tests
done < "$TARGETS"
