#!/usr/bin/env bash
# Every example users may copy works (issue 11, item 15): the descriptions in README.md (each
# `veipipe run -e '…'` of its shell blocks, each `veipipe inject` line, each description in
# backquotes in its text) and in `veipipe stages` (the stage lines and address maps the
# documentation shows). Each goes through `veipipe check`; one that needs no interface, pacing or
# socket is also run and its output read by tcpdump. Fragments are completed the way the text uses
# them: `… -> m` feeds a merge, `m -> …` follows one, a source chain is a control line (checked
# beside a background) unless it ends in a sink, `pace(…) -> …` follows a source. Names the examples use are made here:
# captures written by veigen, interfaces (eth1, A) read as `lo`. The manual pages' EXAMPLES (their
# templates, docs/man/*.in) are taken the same way from their literal displays, and each `veigen`
# command line there is run as written (a pipe into tcpdump included) and must succeed.
#
# Usage: tests/examples_test.sh path/to/veipipe path/to/veigen path/to/README.md [path/to/page.in ...]
tests_dir=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
set -uo pipefail
# shellcheck source=checks.sh
source "$tests_dir/checks.sh"

usage="usage: $0 path/to/veipipe path/to/veigen path/to/README.md [path/to/page.in ...]"
veipipe=$(realpath "${1:?$usage}") || exit 2
veigen=$(realpath "${2:?$usage}") || exit 2
readme=$(realpath "${3:?$usage}") || exit 2
pages=()
for page in "${@:4}"; do pages+=("$(realpath "$page")") || exit 2; done
require examples_test timeout grep sed tcpdump python3 "$veipipe" "$veigen"

tmp=$(mktemp -d "${TMPDIR:-/tmp}/examples_test.XXXXXX") || exit 1
trap 'rm -rf "$tmp"' EXIT
trap 'exit 130' INT
trap 'exit 143' TERM
limit=60 # seconds allowed to every run
cd "$tmp" || exit 1

for f in campus.pcap exploit.pcap bg.pcap attack.pcap x.pcap F T capture-stream; do
  timeout "$limit" "$veigen" -o "$f" --count 300 --seed "${#f}" >/dev/null 2>&1 ||
    { echo "examples_test: veigen could not write $f" >&2; exit 1; }
done

# The examples, one per line, as `KIND<TAB>TEXT`: KIND `run` for a whole description, `line` for a
# control line, `text` for a description fragment from backquotes, `veigen` for a veigen command
# line. Python keeps the extraction readable: the README's shell blocks (quotes spanning lines) and
# backquoted spans; a page template's literal displays (.Bd -literal … .Ed), the same commands.
cat >examples.py <<'PY'
import re, sys
def commands(block):
    for m in re.finditer(r"veipipe run [^']*-e '([^']*)'", block):
        print("run\t" + " ; ".join(l.strip() for l in m.group(1).split("\n")))
    for m in re.finditer(r"veipipe inject \S+ '([^']*)'", block):
        print("line\t" + m.group(1))
for path in sys.argv[1:]:
    text = open(path, encoding="utf-8").read()
    if path.endswith(".in"):
        for block in re.findall(r"^\.Bd -literal[^\n]*\n(.*?)^\.Ed$", text, re.S | re.M):
            commands(block)
            for line in block.splitlines():
                if line.startswith("veigen "):
                    print("veigen\t" + line)
        continue
    for block in re.findall(r"```sh\n(.*?)```", text, re.S):
        commands(block)
    for m in re.finditer(r"`([^`\n]*\([^`\n]*->[^`\n]*)`", text):
        span = m.group(1)
        run = re.fullmatch(r"veipipe run [^']*-e '([^']*)'", span)
        inject = re.fullmatch(r"veipipe inject \S+ '([^']*)'", span)
        print("run\t" + run.group(1) if run else "line\t" + inject.group(1) if inject else "text\t" + span)
PY
python3 examples.py "$readme" >readme.examples
python3 examples.py "${pages[@]}" >man.examples
if ((${#pages[@]})); then
  [[ $(grep -c "^run" man.examples) -gt 0 && $(grep -c "^veigen" man.examples) -gt 0 ]] && pass ||
    fail "descriptions and veigen lines found in the pages' EXAMPLES" "$(cat man.examples)"
fi
# `veigen` in the pages' command lines is the one under test.
mkdir bin && ln -s "$veigen" bin/veigen
"$veipipe" stages >stages.txt 2>&1 || fail "veipipe stages runs"
python3 - stages.txt >stages.examples <<'PY'
import re, sys
text = open(sys.argv[1], encoding="utf-8").read()
for span in sorted(set(re.findall(r"`([^`\n]*)`", text))):
    if re.fullmatch(r"[a-z]+\(.*\)(\s*->.*)?", span):
        print("line\t" + span)
    elif re.fullmatch(r"[0-9./]+:[0-9./]+", span):  # an address map of rewrite's
        print("text\trewrite(ip=\"" + span + "\")")
PY
for list in readme.examples stages.examples; do
  [[ $(grep -c . "$list") -gt 0 ]] && pass || fail "examples found in $list"
done

# Completes a fragment into a description, by the rules above.
complete() {
  local kind=$1 d=$2
  d=$(sed -E 's/\beth[0-9]+\b/lo/g; s/nic\(A\b/nic(lo/g' <<<"$d")
  if [[ $kind == run ]]; then
    echo "$d"
  elif [[ $kind == line && ($d == *"-> file("* || $d == *"-> nic("*) ]]; then
    echo "$d" # a whole pipeline, such as a capture straight to a file
  elif [[ $kind == line ]]; then
    echo "pcap(bg.pcap) -> m: merge -> file(out.pcap); $d -> m"
  elif [[ $d == "m -> "* ]]; then
    echo "pcap(bg.pcap) -> m: merge -> ${d#m -> }"
  elif [[ $d == *"-> m" ]]; then
    echo "pcap(bg.pcap) -> m: merge -> file(out.pcap); $d"
  elif [[ $d == pace\(* ]]; then
    echo "pcap(bg.pcap) -> $d"
  elif [[ $d != *file\(* && $d != *nic\(* ]]; then
    echo "pcap(bg.pcap) -> $d -> file(out.pcap)"
  else
    echo "$d"
  fi
}

n=0
while IFS=$'\t' read -r kind example; do
  example=${example//file(…)/file(out.pcap)}
  [[ $example == *…* ]] && continue # an elision, not an example
  n=$((n + 1))
  if [[ $kind == veigen ]]; then
    if PATH="$tmp/bin:$PATH" timeout "$limit" bash -o pipefail -c "$example" >"veigen.$n.out" 2>"veigen.$n.err"; then pass
    else fail "as written: $example" "$(head -n 6 "veigen.$n.err")"; fi
    continue
  fi
  description=$(complete "$kind" "$example")
  # Standard input is a capture, for the examples that read one (`pcap(-)`).
  timeout "$limit" "$veipipe" check -e "$description" <capture-stream >"check.$n.out" 2>"check.$n.err" && ok=1 || ok=0
  if ((ok)); then pass; else
    fail "veipipe check: $example" "as checked: $description" "$(head -n 6 "check.$n.err")"
    continue
  fi
  # Run what needs no interface, pacing or socket: the output must be a capture tcpdump reads.
  if [[ $description != *nic\(* && $description != *live\(* && $description != *pace\(* &&
        $description != *control\(* && $description == *file\(* ]]; then
    rm -f out.pcap eval.pcap out
    if timeout "$limit" "$veipipe" run -q -e "$description" <capture-stream 2>"run.$n.err"; then
      written=$(sed -nE 's/.*file\(([^,)]*).*/\1/p' <<<"$description")
      # An example that writes to /dev/null (a speed measurement) has only its exit status to check.
      if [[ $written == /dev/null ]] || tcpdump -r "$written" -w /dev/null 2>/dev/null; then pass; else
        fail "veipipe run: tcpdump reads $written of: $example"
      fi
    else
      fail "veipipe run: $example" "as run: $description" "$(head -n 6 "run.$n.err")"
    fi
  fi
done < <(cat readme.examples stages.examples man.examples)
((n >= 10)) && pass || fail "at least 10 examples checked (got $n)"

summary examples_test
