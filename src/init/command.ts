/** The `sprocd init [dir]` command: writes a new project and says what to do next. */
import path from 'node:path';
import { Command } from 'commander';
import { initProject } from './project.js';

/** The `init` command for the CLI's command tree. */
export function initCommand(): Command {
  return new Command('init')
    .description('write a new sprocd project into DIR: jobs/, lifecycle/, package.json, Dockerfile, compose')
    .argument('[dir]', 'the folder to create or fill (must be empty)', '.')
    .option('--force', 'write into a folder that already has files, replacing the ones init writes')
    .action((dir: string, opts: { force?: boolean }) => {
      const written = initProject(dir, { force: opts.force === true });
      const shown = path.relative(process.cwd(), path.resolve(dir)) || '.';
      process.stdout.write(
        [
          `sprocd project written in ${shown}: ${written.join(', ')}`,
          '',
          'next:',
          ...(shown === '.' ? [] : [`  cd ${shown}`]),
          '  npm install',
          '  npm start                                  # a node on http://127.0.0.1:8080',
          `  npx sprocd exec hello '{"who":"Ada"}' --wait`,
          '  docker compose up --build                  # needs SPROCD_TOKEN and REDIS_PASSWORD; see README.md',
          '',
        ].join('\n'),
      );
    });
}
