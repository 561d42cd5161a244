# tap.sh: TAP output for shell tests. Source it; call plan N (or done_testing at the end).
TAP_N=0
TAP_FAILED=0

plan() { echo "1..$1"; }

_tap_result() { # status description
  TAP_N=$((TAP_N + 1))
  if [ "$1" -eq 0 ]; then echo "ok $TAP_N - $2"; else echo "not ok $TAP_N - $2"
    # a test marked "# TODO why" is known not to pass yet: prove reports it, it fails nothing
    case $2 in *"# TODO"*) ;; *) TAP_FAILED=$((TAP_FAILED + 1)) ;; esac
  fi
}

# ok DESC CMD...: passes when CMD exits 0.
ok() { local d=$1; shift; "$@" >/dev/null 2>&1; _tap_result $? "$d"; }

# is GOT EXPECTED DESC
is() {
  if [ "$1" = "$2" ]; then _tap_result 0 "$3"
  else _tap_result 1 "$3"; printf '#   got:      %s\n#   expected: %s\n' "$1" "$2"; fi
}

# _one_pattern REGEX: grep takes each line of a pattern as a pattern of its own (any
# of them matching), so a newline in REGEX is written as the character class that
# matches it: a pattern over several lines must match them all, in order.
_one_pattern() { printf '%s' "${1//$'\n'/[[:space:]]}"; }

# like GOT REGEX DESC (grep -E over the whole text: . matches newlines too)
like() {
  if printf '%s' "$1" | grep -Ezq -- "$(_one_pattern "$2")"; then _tap_result 0 "$3"
  else _tap_result 1 "$3"; printf '#   got:      %s\n#   expected to match: %s\n' "$1" "$2" | head -20; fi
}

# unlike GOT REGEX DESC
unlike() {
  if printf '%s' "$1" | grep -Ezq -- "$(_one_pattern "$2")"; then _tap_result 1 "$3"; printf '#   got:      %s\n#   must not match: %s\n' "$1" "$2" | head -20
  else _tap_result 0 "$3"; fi
}

# re_escape TEXT: TEXT as a literal inside a grep -E pattern.
re_escape() { printf '%s' "$1" | sed 's/[][\\.*^$(){}?+|/]/\\&/g'; }

diag() { printf '# %s\n' "$*"; }

bail() { echo "Bail out! $*"; exit 1; }

done_testing() { echo "1..$TAP_N"; [ "$TAP_FAILED" -eq 0 ]; }
