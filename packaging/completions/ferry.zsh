#compdef ferry

autoload -U is-at-least

_ferry() {
    typeset -A opt_args
    typeset -a _arguments_options
    local ret=1

    if is-at-least 5.2; then
        _arguments_options=(-s -S -C)
    else
        _arguments_options=(-s -C)
    fi

    local context curcontext="$curcontext" state line
    _arguments "${_arguments_options[@]}" : \
'--config=[The config file \[default\: \$XDG_CONFIG_HOME/ferry/config.toml, else ~/.config/ferry/config.toml\]]:PATH:_files' \
'(-q --quiet)*-v[More output\: -v logs what ferry does, -vv adds protocol traces (passwords are never shown)]' \
'(-q --quiet)*--verbose[More output\: -v logs what ferry does, -vv adds protocol traces (passwords are never shown)]' \
'-q[Less output\: errors and warnings only]' \
'--quiet[Less output\: errors and warnings only]' \
'-h[Print help]' \
'--help[Print help]' \
'-V[Print version]' \
'--version[Print version]' \
":: :_ferry_commands" \
"*::: :->ferry" \
&& ret=0
    case $state in
    (ferry)
        words=($line[1] "${words[@]}")
        (( CURRENT += 1 ))
        curcontext="${curcontext%:*:*}:ferry-command-$line[1]:"
        case $line[1] in
            (doctor)
_arguments "${_arguments_options[@]}" : \
'--config=[The config file \[default\: \$XDG_CONFIG_HOME/ferry/config.toml, else ~/.config/ferry/config.toml\]]:PATH:_files' \
'--json[Print the report as JSON]' \
'--no-connect[Check the config, password, Maildir and state dir without contacting the server (for an offline machine)]' \
'(-q --quiet)*-v[More output\: -v logs what ferry does, -vv adds protocol traces (passwords are never shown)]' \
'(-q --quiet)*--verbose[More output\: -v logs what ferry does, -vv adds protocol traces (passwords are never shown)]' \
'-q[Less output\: errors and warnings only]' \
'--quiet[Less output\: errors and warnings only]' \
'-h[Print help (see more with '\''--help'\'')]' \
'--help[Print help (see more with '\''--help'\'')]' \
'-V[Print version]' \
'--version[Print version]' \
'*::accounts -- The accounts to check \[default\: all\]:_default' \
&& ret=0
;;
(sync)
_arguments "${_arguments_options[@]}" : \
'*--folder=[Sync only this folder (a local name or pattern; repeatable)]:NAME:_default' \
'--config=[The config file \[default\: \$XDG_CONFIG_HOME/ferry/config.toml, else ~/.config/ferry/config.toml\]]:PATH:_files' \
'--dry-run[Change nothing; print the plan (the same as \`ferry plan\`)]' \
'--allow-mass-delete[Let through deletions the mass-delete guard held back (more than half of a folder and more than 20 messages)]' \
'--full[Look at every message of every folder, trusting no shortcut that skips a folder or message as unchanged]' \
'--json[Print the plan as JSON (with \`plan\` or \`--dry-run\`)]' \
'(-q --quiet)*-v[More output\: -v logs what ferry does, -vv adds protocol traces (passwords are never shown)]' \
'(-q --quiet)*--verbose[More output\: -v logs what ferry does, -vv adds protocol traces (passwords are never shown)]' \
'-q[Less output\: errors and warnings only]' \
'--quiet[Less output\: errors and warnings only]' \
'-h[Print help]' \
'--help[Print help]' \
'-V[Print version]' \
'--version[Print version]' \
'*::accounts -- The accounts to sync \[default\: all\]:_default' \
&& ret=0
;;
(plan)
_arguments "${_arguments_options[@]}" : \
'*--folder=[Sync only this folder (a local name or pattern; repeatable)]:NAME:_default' \
'--config=[The config file \[default\: \$XDG_CONFIG_HOME/ferry/config.toml, else ~/.config/ferry/config.toml\]]:PATH:_files' \
'--dry-run[Change nothing; print the plan (the same as \`ferry plan\`)]' \
'--allow-mass-delete[Let through deletions the mass-delete guard held back (more than half of a folder and more than 20 messages)]' \
'--full[Look at every message of every folder, trusting no shortcut that skips a folder or message as unchanged]' \
'--json[Print the plan as JSON (with \`plan\` or \`--dry-run\`)]' \
'(-q --quiet)*-v[More output\: -v logs what ferry does, -vv adds protocol traces (passwords are never shown)]' \
'(-q --quiet)*--verbose[More output\: -v logs what ferry does, -vv adds protocol traces (passwords are never shown)]' \
'-q[Less output\: errors and warnings only]' \
'--quiet[Less output\: errors and warnings only]' \
'-h[Print help]' \
'--help[Print help]' \
'-V[Print version]' \
'--version[Print version]' \
'*::accounts -- The accounts to sync \[default\: all\]:_default' \
&& ret=0
;;
(status)
_arguments "${_arguments_options[@]}" : \
'--config=[The config file \[default\: \$XDG_CONFIG_HOME/ferry/config.toml, else ~/.config/ferry/config.toml\]]:PATH:_files' \
'--json[Print JSON]' \
'(-q --quiet)*-v[More output\: -v logs what ferry does, -vv adds protocol traces (passwords are never shown)]' \
'(-q --quiet)*--verbose[More output\: -v logs what ferry does, -vv adds protocol traces (passwords are never shown)]' \
'-q[Less output\: errors and warnings only]' \
'--quiet[Less output\: errors and warnings only]' \
'-h[Print help]' \
'--help[Print help]' \
'-V[Print version]' \
'--version[Print version]' \
'*::accounts -- The accounts to show \[default\: all\]:_default' \
&& ret=0
;;
(generate)
_arguments "${_arguments_options[@]}" : \
'--config=[The config file \[default\: \$XDG_CONFIG_HOME/ferry/config.toml, else ~/.config/ferry/config.toml\]]:PATH:_files' \
'(-q --quiet)*-v[More output\: -v logs what ferry does, -vv adds protocol traces (passwords are never shown)]' \
'(-q --quiet)*--verbose[More output\: -v logs what ferry does, -vv adds protocol traces (passwords are never shown)]' \
'-q[Less output\: errors and warnings only]' \
'--quiet[Less output\: errors and warnings only]' \
'-h[Print help]' \
'--help[Print help]' \
'-V[Print version]' \
'--version[Print version]' \
':what -- `man`, or a shell\: bash, zsh, fish, elvish, powershell:_default' \
&& ret=0
;;
(help)
_arguments "${_arguments_options[@]}" : \
":: :_ferry__subcmd__help_commands" \
"*::: :->help" \
&& ret=0

    case $state in
    (help)
        words=($line[1] "${words[@]}")
        (( CURRENT += 1 ))
        curcontext="${curcontext%:*:*}:ferry-help-command-$line[1]:"
        case $line[1] in
            (doctor)
_arguments "${_arguments_options[@]}" : \
&& ret=0
;;
(sync)
_arguments "${_arguments_options[@]}" : \
&& ret=0
;;
(plan)
_arguments "${_arguments_options[@]}" : \
&& ret=0
;;
(status)
_arguments "${_arguments_options[@]}" : \
&& ret=0
;;
(generate)
_arguments "${_arguments_options[@]}" : \
&& ret=0
;;
(help)
_arguments "${_arguments_options[@]}" : \
&& ret=0
;;
        esac
    ;;
esac
;;
        esac
    ;;
esac
}

(( $+functions[_ferry_commands] )) ||
_ferry_commands() {
    local commands; commands=(
'doctor:Check the config, the password, the Maildir and the server, and say how to fix what is wrong' \
'sync:Sync accounts both ways (all accounts when none is named)' \
'plan:Show what \`ferry sync\` would do, changing nothing' \
'status:Show when accounts last synced, their folders and counts, and pending work of an interrupted run' \
'generate:Print the manual page or shell completions (for packagers)' \
'help:Print this message or the help of the given subcommand(s)' \
    )
    _describe -t commands 'ferry commands' commands "$@"
}
(( $+functions[_ferry__subcmd__doctor_commands] )) ||
_ferry__subcmd__doctor_commands() {
    local commands; commands=()
    _describe -t commands 'ferry doctor commands' commands "$@"
}
(( $+functions[_ferry__subcmd__generate_commands] )) ||
_ferry__subcmd__generate_commands() {
    local commands; commands=()
    _describe -t commands 'ferry generate commands' commands "$@"
}
(( $+functions[_ferry__subcmd__help_commands] )) ||
_ferry__subcmd__help_commands() {
    local commands; commands=(
'doctor:Check the config, the password, the Maildir and the server, and say how to fix what is wrong' \
'sync:Sync accounts both ways (all accounts when none is named)' \
'plan:Show what \`ferry sync\` would do, changing nothing' \
'status:Show when accounts last synced, their folders and counts, and pending work of an interrupted run' \
'generate:Print the manual page or shell completions (for packagers)' \
'help:Print this message or the help of the given subcommand(s)' \
    )
    _describe -t commands 'ferry help commands' commands "$@"
}
(( $+functions[_ferry__subcmd__help__subcmd__doctor_commands] )) ||
_ferry__subcmd__help__subcmd__doctor_commands() {
    local commands; commands=()
    _describe -t commands 'ferry help doctor commands' commands "$@"
}
(( $+functions[_ferry__subcmd__help__subcmd__generate_commands] )) ||
_ferry__subcmd__help__subcmd__generate_commands() {
    local commands; commands=()
    _describe -t commands 'ferry help generate commands' commands "$@"
}
(( $+functions[_ferry__subcmd__help__subcmd__help_commands] )) ||
_ferry__subcmd__help__subcmd__help_commands() {
    local commands; commands=()
    _describe -t commands 'ferry help help commands' commands "$@"
}
(( $+functions[_ferry__subcmd__help__subcmd__plan_commands] )) ||
_ferry__subcmd__help__subcmd__plan_commands() {
    local commands; commands=()
    _describe -t commands 'ferry help plan commands' commands "$@"
}
(( $+functions[_ferry__subcmd__help__subcmd__status_commands] )) ||
_ferry__subcmd__help__subcmd__status_commands() {
    local commands; commands=()
    _describe -t commands 'ferry help status commands' commands "$@"
}
(( $+functions[_ferry__subcmd__help__subcmd__sync_commands] )) ||
_ferry__subcmd__help__subcmd__sync_commands() {
    local commands; commands=()
    _describe -t commands 'ferry help sync commands' commands "$@"
}
(( $+functions[_ferry__subcmd__plan_commands] )) ||
_ferry__subcmd__plan_commands() {
    local commands; commands=()
    _describe -t commands 'ferry plan commands' commands "$@"
}
(( $+functions[_ferry__subcmd__status_commands] )) ||
_ferry__subcmd__status_commands() {
    local commands; commands=()
    _describe -t commands 'ferry status commands' commands "$@"
}
(( $+functions[_ferry__subcmd__sync_commands] )) ||
_ferry__subcmd__sync_commands() {
    local commands; commands=()
    _describe -t commands 'ferry sync commands' commands "$@"
}

if [ "$funcstack[1]" = "_ferry" ]; then
    _ferry "$@"
else
    compdef _ferry ferry
fi
