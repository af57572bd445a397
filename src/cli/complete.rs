//! `svc completions SHELL`: clap's completion script for the shell, with unit names completed
//! from `svc list` for the subcommands that take them.

use clap::CommandFactory;

/// The shells `svc completions` writes a script for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Shell {
    Bash,
    Zsh,
    Fish,
}

/// The subcommands whose positional arguments are unit names.
const TAKE_NAMES: &[&str] = &[
    "status", "start", "stop", "restart", "wait", "reload", "kill", "logs",
];

/// The names of the units svcd knows, one a word, for a shell to run: nothing when svcd does
/// not answer.
const LIST_NAMES: &str = "svc list 2>/dev/null | awk 'NR > 1 { print $1 }'";

/// The completion script for `shell`.
pub fn script(shell: Shell) -> String {
    let mut command = super::Args::command();
    let mut out = Vec::new();
    let generator = match shell {
        Shell::Bash => clap_complete::Shell::Bash,
        Shell::Zsh => clap_complete::Shell::Zsh,
        Shell::Fish => clap_complete::Shell::Fish,
    };
    clap_complete::generate(generator, &mut command, "svc", &mut out);
    let generated = String::from_utf8_lossy(&out).into_owned();
    let subcommands = TAKE_NAMES.join(" ");
    match shell {
        Shell::Bash => format!(
            "{generated}
# Unit names for the subcommands that take them; everything else as clap completes it.
_svc_units() {{
    local cur=${{COMP_WORDS[COMP_CWORD]}} prev=${{COMP_WORDS[COMP_CWORD-1]}} word sub=
    for word in \"${{COMP_WORDS[@]:1:COMP_CWORD-1}}\"; do
        case \" {subcommands} \" in *\" $word \"*) sub=$word; break ;; esac
    done
    case $prev in
        --for|-s|--signal|-n|--lines|--socket|--timeout) sub= ;;
    esac
    if [[ -n $sub && $cur != -* ]]; then
        COMPREPLY=($(compgen -W \"$({LIST_NAMES})\" -- \"$cur\"))
        return 0
    fi
    _svc \"$@\"
}}
complete -F _svc_units -o bashdefault -o default svc
"
        ),
        Shell::Zsh => {
            // clap completes the NAME arguments with `_default` (files); unit names instead.
            let mut text = String::new();
            for line in generated.lines() {
                if line.contains("::names -- ") || line.contains(":names -- ") {
                    text.push_str(&line.replace(":_default'", ":_svc_units'"));
                } else {
                    text.push_str(line);
                }
                text.push('\n');
            }
            let at = text
                .find("(( $+functions[_svc_commands] ))")
                .unwrap_or(text.len());
            text.insert_str(
                at,
                &format!(
                    "(( $+functions[_svc_units] )) ||\n_svc_units() {{\n    local -a units\n    units=(${{(f)\"$({LIST_NAMES})\"}})\n    _describe 'unit' units\n}}\n\n"
                ),
            );
            text
        }
        Shell::Fish => format!(
            "{generated}complete -c svc -n \"__fish_seen_subcommand_from {subcommands}\" -f -a \"({LIST_NAMES})\"\n"
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every subcommand and every argument of `svc` says what it is for in `--help`.
    #[test]
    fn every_subcommand_and_argument_has_help() {
        fn walk(command: &clap::Command, path: &str, missing: &mut Vec<String>) {
            for arg in command.get_arguments() {
                let id = arg.get_id().as_str();
                if id == "help" || id == "version" {
                    continue;
                }
                if arg.get_help().is_none() && arg.get_long_help().is_none() {
                    missing.push(format!("{path} {id}"));
                }
            }
            for sub in command.get_subcommands() {
                let path = format!("{path} {}", sub.get_name());
                if sub.get_name() != "help" && sub.get_about().is_none() {
                    missing.push(path.clone());
                }
                walk(sub, &path, missing);
            }
        }
        let mut missing = Vec::new();
        let mut command = crate::cli::Args::command();
        command.build();
        walk(&command, "svc", &mut missing);
        assert!(missing.is_empty(), "no help text: {missing:?}");
    }

    #[test]
    fn completion_scripts_complete_unit_names_from_svc_list() {
        for shell in [Shell::Bash, Shell::Zsh, Shell::Fish] {
            let text = script(shell);
            assert!(text.contains(LIST_NAMES), "{shell:?}");
            assert!(text.contains("logs"), "{shell:?}");
        }
        // zsh: every NAME argument completes units, none files.
        let zsh = script(Shell::Zsh);
        let names: Vec<&str> = zsh.lines().filter(|l| l.contains("::names -- ")).collect();
        assert_eq!(names.len(), TAKE_NAMES.len(), "{names:?}");
        assert!(
            names.iter().all(|l| l.contains(":_svc_units'")),
            "{names:?}"
        );
        assert!(script(Shell::Bash).contains("complete -F _svc_units"));
    }
}
