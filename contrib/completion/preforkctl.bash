# bash completion for preforkctl: commands, options, and slot numbers of the running
# daemon (from `preforkctl status --json`, with the same --socket/--config) for restart and logs.

_preforkctl_slots() {
  local -a target=()
  local i
  for ((i = 1; i < ${#COMP_WORDS[@]} - 1; i++)); do
    case ${COMP_WORDS[i]} in
      -s | --socket | -c | --config) target+=("${COMP_WORDS[i]}" "${COMP_WORDS[i + 1]}") ;;
      --socket=* | --config=*) target+=("${COMP_WORDS[i]}") ;;
    esac
  done
  preforkctl "${target[@]}" --timeout 2s status --json 2>/dev/null |
    grep -o '"slot": *[0-9]*' | grep -o '[0-9]*$'
}

_preforkctl() {
  local cur prev words cword
  _init_completion || return

  case $prev in
    -s | --socket) _filedir; return ;;
    -c | --config) _filedir toml; return ;;
    --timeout) mapfile -t COMPREPLY < <(compgen -W "2s 5s 30s 1m 10m" -- "$cur"); return ;;
  esac

  local command="" i
  for ((i = 1; i < cword; i++)); do
    case ${words[i]} in
      -s | --socket | -c | --config | --timeout) ((i++)) ;;
      -*) ;;
      *) command=${words[i]}; break ;;
    esac
  done

  if [[ $command == logs && $prev == -n ]]; then
    mapfile -t COMPREPLY < <(compgen -W "10 50 100 1000" -- "$cur")
    return
  fi
  if [[ $command == logs && $cur == -* ]]; then
    mapfile -t COMPREPLY < <(compgen -W "-f --follow -n --lines" -- "$cur")
    return
  fi
  if [[ $cur == -* ]]; then
    mapfile -t COMPREPLY < <(compgen -W "--socket --config --json --timeout --help --version" -- "$cur")
    return
  fi
  case $command in
    "") mapfile -t COMPREPLY < <(compgen -W "status reload scale restart stop check upgrade logs" -- "$cur") ;;
    restart) mapfile -t COMPREPLY < <(compgen -W "all $(_preforkctl_slots)" -- "$cur") ;;
    logs) mapfile -t COMPREPLY < <(compgen -W "$(_preforkctl_slots)" -- "$cur") ;;
    scale) mapfile -t COMPREPLY < <(compgen -W "+1 -1" -- "$cur") ;;
  esac
}
complete -F _preforkctl preforkctl
