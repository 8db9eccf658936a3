# Print an optspec for argparse to handle cmd's options that are independent of any subcommand.
function __fish_ferry_global_optspecs
    string join \n config= v/verbose q/quiet h/help V/version
end

function __fish_ferry_needs_command
    # Figure out if the current invocation already has a command.
    set -l cmd (commandline -opc)
    set -e cmd[1]
    argparse -s (__fish_ferry_global_optspecs) -- $cmd 2>/dev/null
    or return
    if set -q argv[1]
        # Also print the command, so this can be used to figure out what it is.
        echo $argv[1]
        return 1
    end
    return 0
end

function __fish_ferry_using_subcommand
    set -l cmd (__fish_ferry_needs_command)
    test -z "$cmd"
    and return 1
    contains -- $cmd[1] $argv
end

complete -c ferry -n "__fish_ferry_needs_command" -l config -d 'The config file [default: $XDG_CONFIG_HOME/ferry/config.toml, else ~/.config/ferry/config.toml]' -r -F
complete -c ferry -n "__fish_ferry_needs_command" -s v -l verbose -d 'More output: -v logs what ferry does, -vv adds protocol traces (passwords are never shown)'
complete -c ferry -n "__fish_ferry_needs_command" -s q -l quiet -d 'Less output: errors and warnings only'
complete -c ferry -n "__fish_ferry_needs_command" -s h -l help -d 'Print help'
complete -c ferry -n "__fish_ferry_needs_command" -s V -l version -d 'Print version'
complete -c ferry -n "__fish_ferry_needs_command" -f -a "doctor" -d 'Check the config, the password, the Maildir and the server, and say how to fix what is wrong'
complete -c ferry -n "__fish_ferry_needs_command" -f -a "sync" -d 'Sync accounts both ways (all accounts when none is named)'
complete -c ferry -n "__fish_ferry_needs_command" -f -a "plan" -d 'Show what `ferry sync` would do, changing nothing'
complete -c ferry -n "__fish_ferry_needs_command" -f -a "status" -d 'Show when accounts last synced, their folders and counts, and pending work of an interrupted run'
complete -c ferry -n "__fish_ferry_needs_command" -f -a "generate" -d 'Print the manual page or shell completions (for packagers)'
complete -c ferry -n "__fish_ferry_needs_command" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c ferry -n "__fish_ferry_using_subcommand doctor" -l config -d 'The config file [default: $XDG_CONFIG_HOME/ferry/config.toml, else ~/.config/ferry/config.toml]' -r -F
complete -c ferry -n "__fish_ferry_using_subcommand doctor" -l json -d 'Print the report as JSON'
complete -c ferry -n "__fish_ferry_using_subcommand doctor" -l no-connect -d 'Check the config, password, Maildir and state dir without contacting the server (for an offline machine)'
complete -c ferry -n "__fish_ferry_using_subcommand doctor" -s v -l verbose -d 'More output: -v logs what ferry does, -vv adds protocol traces (passwords are never shown)'
complete -c ferry -n "__fish_ferry_using_subcommand doctor" -s q -l quiet -d 'Less output: errors and warnings only'
complete -c ferry -n "__fish_ferry_using_subcommand doctor" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c ferry -n "__fish_ferry_using_subcommand doctor" -s V -l version -d 'Print version'
complete -c ferry -n "__fish_ferry_using_subcommand sync" -l folder -d 'Sync only this folder (a local name or pattern; repeatable)' -r
complete -c ferry -n "__fish_ferry_using_subcommand sync" -l config -d 'The config file [default: $XDG_CONFIG_HOME/ferry/config.toml, else ~/.config/ferry/config.toml]' -r -F
complete -c ferry -n "__fish_ferry_using_subcommand sync" -l dry-run -d 'Change nothing; print the plan (the same as `ferry plan`)'
complete -c ferry -n "__fish_ferry_using_subcommand sync" -l allow-mass-delete -d 'Let through deletions the mass-delete guard held back (more than half of a folder and more than 20 messages)'
complete -c ferry -n "__fish_ferry_using_subcommand sync" -l full -d 'Look at every message of every folder, trusting no shortcut that skips a folder or message as unchanged'
complete -c ferry -n "__fish_ferry_using_subcommand sync" -l json -d 'Print the plan as JSON (with `plan` or `--dry-run`)'
complete -c ferry -n "__fish_ferry_using_subcommand sync" -s v -l verbose -d 'More output: -v logs what ferry does, -vv adds protocol traces (passwords are never shown)'
complete -c ferry -n "__fish_ferry_using_subcommand sync" -s q -l quiet -d 'Less output: errors and warnings only'
complete -c ferry -n "__fish_ferry_using_subcommand sync" -s h -l help -d 'Print help'
complete -c ferry -n "__fish_ferry_using_subcommand sync" -s V -l version -d 'Print version'
complete -c ferry -n "__fish_ferry_using_subcommand plan" -l folder -d 'Sync only this folder (a local name or pattern; repeatable)' -r
complete -c ferry -n "__fish_ferry_using_subcommand plan" -l config -d 'The config file [default: $XDG_CONFIG_HOME/ferry/config.toml, else ~/.config/ferry/config.toml]' -r -F
complete -c ferry -n "__fish_ferry_using_subcommand plan" -l dry-run -d 'Change nothing; print the plan (the same as `ferry plan`)'
complete -c ferry -n "__fish_ferry_using_subcommand plan" -l allow-mass-delete -d 'Let through deletions the mass-delete guard held back (more than half of a folder and more than 20 messages)'
complete -c ferry -n "__fish_ferry_using_subcommand plan" -l full -d 'Look at every message of every folder, trusting no shortcut that skips a folder or message as unchanged'
complete -c ferry -n "__fish_ferry_using_subcommand plan" -l json -d 'Print the plan as JSON (with `plan` or `--dry-run`)'
complete -c ferry -n "__fish_ferry_using_subcommand plan" -s v -l verbose -d 'More output: -v logs what ferry does, -vv adds protocol traces (passwords are never shown)'
complete -c ferry -n "__fish_ferry_using_subcommand plan" -s q -l quiet -d 'Less output: errors and warnings only'
complete -c ferry -n "__fish_ferry_using_subcommand plan" -s h -l help -d 'Print help'
complete -c ferry -n "__fish_ferry_using_subcommand plan" -s V -l version -d 'Print version'
complete -c ferry -n "__fish_ferry_using_subcommand status" -l config -d 'The config file [default: $XDG_CONFIG_HOME/ferry/config.toml, else ~/.config/ferry/config.toml]' -r -F
complete -c ferry -n "__fish_ferry_using_subcommand status" -l json -d 'Print JSON'
complete -c ferry -n "__fish_ferry_using_subcommand status" -s v -l verbose -d 'More output: -v logs what ferry does, -vv adds protocol traces (passwords are never shown)'
complete -c ferry -n "__fish_ferry_using_subcommand status" -s q -l quiet -d 'Less output: errors and warnings only'
complete -c ferry -n "__fish_ferry_using_subcommand status" -s h -l help -d 'Print help'
complete -c ferry -n "__fish_ferry_using_subcommand status" -s V -l version -d 'Print version'
complete -c ferry -n "__fish_ferry_using_subcommand generate" -l config -d 'The config file [default: $XDG_CONFIG_HOME/ferry/config.toml, else ~/.config/ferry/config.toml]' -r -F
complete -c ferry -n "__fish_ferry_using_subcommand generate" -s v -l verbose -d 'More output: -v logs what ferry does, -vv adds protocol traces (passwords are never shown)'
complete -c ferry -n "__fish_ferry_using_subcommand generate" -s q -l quiet -d 'Less output: errors and warnings only'
complete -c ferry -n "__fish_ferry_using_subcommand generate" -s h -l help -d 'Print help'
complete -c ferry -n "__fish_ferry_using_subcommand generate" -s V -l version -d 'Print version'
complete -c ferry -n "__fish_ferry_using_subcommand help; and not __fish_seen_subcommand_from doctor sync plan status generate help" -f -a "doctor" -d 'Check the config, the password, the Maildir and the server, and say how to fix what is wrong'
complete -c ferry -n "__fish_ferry_using_subcommand help; and not __fish_seen_subcommand_from doctor sync plan status generate help" -f -a "sync" -d 'Sync accounts both ways (all accounts when none is named)'
complete -c ferry -n "__fish_ferry_using_subcommand help; and not __fish_seen_subcommand_from doctor sync plan status generate help" -f -a "plan" -d 'Show what `ferry sync` would do, changing nothing'
complete -c ferry -n "__fish_ferry_using_subcommand help; and not __fish_seen_subcommand_from doctor sync plan status generate help" -f -a "status" -d 'Show when accounts last synced, their folders and counts, and pending work of an interrupted run'
complete -c ferry -n "__fish_ferry_using_subcommand help; and not __fish_seen_subcommand_from doctor sync plan status generate help" -f -a "generate" -d 'Print the manual page or shell completions (for packagers)'
complete -c ferry -n "__fish_ferry_using_subcommand help; and not __fish_seen_subcommand_from doctor sync plan status generate help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
