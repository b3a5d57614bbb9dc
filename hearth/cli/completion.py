"""`hearth completion bash|zsh`: a completion script for the shell, offering
the commands and, after those that take one, the model ids (asked of
`hearth list -q` when completing, so it lists what the engine lists)."""

MODEL_COMMANDS = ("run", "show", "stop", "rm", "cp", "quantize")

_BASH = """_hearth_complete() {
    local cur="${COMP_WORDS[COMP_CWORD]}"
    if [ "$COMP_CWORD" -eq 1 ]; then
        COMPREPLY=($(compgen -W "%(commands)s" -- "$cur"))
    elif [ "$COMP_CWORD" -eq 2 ]; then
        case "${COMP_WORDS[1]}" in
            %(model_commands)s) COMPREPLY=($(compgen -W "$(hearth list -q 2>/dev/null)" -- "$cur")) ;;
        esac
    fi
}
complete -F _hearth_complete hearth
"""


def script(shell: str, commands: list[str]) -> str:
    """The script for ``shell`` ("bash", or "zsh" through its bash completion layer)."""
    body = _BASH % {"commands": " ".join(commands), "model_commands": "|".join(MODEL_COMMANDS)}
    if shell == "zsh":
        return "autoload -U +X bashcompinit && bashcompinit\n" + body
    return body
