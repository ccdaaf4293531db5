/**
 * `sprocd completion bash|zsh|fish`: a completion script made from the command tree itself, so a
 * new command or option completes without editing a script. bash's script also serves zsh (through
 * bashcompinit); fish gets its own `complete` lines.
 */
import { Argument, Command, type Option } from 'commander';
import type { CliContext } from './context.js';

const SHELLS = ['bash', 'zsh', 'fish'] as const;

/** One command of the tree: its path of names, subcommands, options, and the choices of its argument. */
interface Node {
  path: string;
  subcommands: string[];
  options: Option[];
  argumentChoices: string[];
}

function walk(command: Command, inherited: Option[], prefix: string[], into: Node[]): void {
  const own = command.options.filter((o) => !o.hidden);
  // Options of the program (--url, --json, ...) are accepted after any command.
  const options = [...inherited, ...own];
  const visible = command.commands.filter((c) => !(c as unknown as { _hidden?: boolean })._hidden);
  into.push({
    path: prefix.join(' '),
    subcommands: visible.map((c) => c.name()),
    options,
    argumentChoices: command.registeredArguments.flatMap((a) => a.argChoices ?? []),
  });
  for (const sub of visible) {
    walk(sub, prefix.length === 0 ? own : inherited, [...prefix, sub.name()], into);
  }
}

const names = (o: Option): string[] => [o.long, o.short].filter((n): n is string => Boolean(n));
const takesValue = (o: Option): boolean => o.required || o.optional;
const quote = (s: string): string => `'${s.replace(/'/g, `'\\''`)}'`;

/** The bash script (also sourced by zsh). */
function bashScript(nodes: Node[], bin: string): string {
  const cases = (pick: (n: Node) => string) =>
    nodes.map((n) => `    ${quote(n.path)}) echo ${quote(pick(n))} ;;`).join('\n');
  const choices = nodes
    .flatMap((n) =>
      n.options
        .filter((o) => o.argChoices?.length)
        .flatMap((o) =>
          names(o).map(
            (name) => `    ${quote(`${n.path}|${name}`)}) echo ${quote(o.argChoices!.join(' '))} ;;`,
          ),
        ),
    )
    .join('\n');
  const fn = `_${bin.replace(/[^A-Za-z0-9_]/g, '_')}`;
  return `# ${bin} completion for bash (and zsh through bashcompinit).
# Load it with: source <(${bin} completion bash)   or save it under /etc/bash_completion.d/
${fn}_words() {
  case "$1" in
${cases((n) => [...n.subcommands, ...n.argumentChoices].join(' '))}
  esac
}
${fn}_options() {
  case "$1" in
${cases((n) => n.options.flatMap(names).join(' '))}
  esac
}
${fn}_valued() {
  case "$1" in
${cases((n) => n.options.filter(takesValue).flatMap(names).join(' '))}
  esac
}
${fn}_choices() {
  case "$1" in
${choices}
  esac
}
${fn}() {
  local cur="\${COMP_WORDS[COMP_CWORD]}" prev="\${COMP_WORDS[COMP_CWORD-1]}" path="" skip=0 i w
  for ((i = 1; i < COMP_CWORD; i++)); do
    w="\${COMP_WORDS[i]}"
    if ((skip)); then skip=0; continue; fi
    case "$w" in
      -*) [[ " $(${fn}_valued "$path") " == *" $w "* ]] && skip=1 ;;
      *) [[ " $(${fn}_words "$path") " == *" $w "* ]] && path="\${path:+$path }$w" ;;
    esac
  done
  if [[ "$prev" == -* && " $(${fn}_valued "$path") " == *" $prev "* ]]; then
    COMPREPLY=($(compgen -W "$(${fn}_choices "$path|$prev")" -- "$cur"))
    return
  fi
  if [[ "$cur" == -* ]]; then
    COMPREPLY=($(compgen -W "$(${fn}_options "$path")" -- "$cur"))
  else
    COMPREPLY=($(compgen -W "$(${fn}_words "$path")" -- "$cur"))
  fi
}
complete -o default -F ${fn} ${bin}
`;
}

/** The fish script: one `complete` line per subcommand and option. */
function fishScript(nodes: Node[], bin: string): string {
  const lines = [
    `# ${bin} completion for fish. Load it with: ${bin} completion fish | source`,
    `complete -c ${bin} -f`,
  ];
  for (const node of nodes) {
    const words = node.path ? node.path.split(' ') : [];
    const at =
      words.length === 0
        ? '__fish_use_subcommand'
        : `__fish_seen_subcommand_from ${words.at(-1)}${words.length > 1 ? `; and __fish_seen_subcommand_from ${words[0]}` : ''}`;
    for (const sub of node.subcommands) {
      lines.push(
        `complete -c ${bin} -n ${quote(words.length === 0 ? at : `${at}; and not __fish_seen_subcommand_from ${node.subcommands.join(' ')}`)} -a ${sub}`,
      );
    }
    if (node.argumentChoices.length) {
      lines.push(`complete -c ${bin} -n ${quote(at)} -a ${quote(node.argumentChoices.join(' '))}`);
    }
    for (const option of node.options) {
      const parts = [`complete -c ${bin} -n ${quote(at)}`];
      if (option.long) {
        parts.push(`-l ${option.long.replace(/^--/, '')}`);
      }
      if (option.short) {
        parts.push(`-s ${option.short.replace(/^-/, '')}`);
      }
      if (takesValue(option)) {
        parts.push('-r');
      }
      if (option.argChoices?.length) {
        parts.push(`-a ${quote(option.argChoices.join(' '))}`);
      }
      parts.push(`-d ${quote(option.description)}`);
      lines.push(parts.join(' '));
    }
  }
  return `${lines.join('\n')}\n`;
}

/** The completion script of `program` for `shell`. */
export function completionScript(program: Command, shell: (typeof SHELLS)[number]): string {
  const nodes: Node[] = [];
  walk(program, [], [], nodes);
  const bin = program.name();
  if (shell === 'fish') {
    return fishScript(nodes, bin);
  }
  const bash = bashScript(nodes, bin);
  return shell === 'zsh'
    ? `# ${bin} completion for zsh. Load it with: source <(${bin} completion zsh)\nautoload -U +X bashcompinit && bashcompinit\n${bash}`
    : bash;
}

/** `sprocd completion SHELL`: prints the script. */
export function completionCommand(ctx: CliContext, program: Command): Command {
  return new Command('completion')
    .description('print a shell completion script: source <(sprocd completion bash)')
    .addArgument(new Argument('<shell>', 'bash, zsh or fish').choices(SHELLS))
    .action((shell: (typeof SHELLS)[number]) => {
      ctx.io.out.write(completionScript(program, shell));
    });
}
