/** `ferry keys` and `ferry audit`: through Ferry's HTTP API, as an admin key. */
import type { Command } from 'commander';
import { SCOPES } from '../../../lib/auth/scopes';
import { type CliContext, DEPLOYMENT, JSON_FLAG } from './context';

export function addAccessCommands(program: Command, { config, withApi }: CliContext): void {
  // ---- keys and audit ----
  program.commandsGroup(
    "Keys and the audit log (through Ferry's HTTP API, with FERRY_API_KEY or <state dir>/admin.key):",
  );

  const keys = program
    .command('keys')
    .description('API keys: create (shown once), list, revoke; needs an admin key')
    .addHelpText(
      'after',
      `
Scopes: ${SCOPES.join(', ')} (admin implies every other).`,
    );

  keys
    .command('bootstrap')
    .description(
      "make this machine's admin key in <state dir>/admin.key (mode 0600) if it has none, as the first `ferry up` does",
    )
    .action(async () => {
      const { ensureLocalAdminKey } = await import('../up');
      console.log(await ensureLocalAdminKey(config));
    });

  keys
    .command('create')
    .description('make a key for a project and print it once (alone on stdout; notes on stderr)')
    .requiredOption('--project <project>', 'the project (tenant) the key belongs to; made if new')
    .requiredOption('--scope <a,b>', `what it may do: ${SCOPES.join(', ')}`)
    .option('--name <name>', 'a name to list and revoke it by (default: key-<time>)')
    .option('--json', 'print the key and its row as JSON')
    .action(async (o: import('../keys').KeysCreateFlags) => {
      const { keysCreateCommand } = await import('../keys');
      await withApi((api) => keysCreateCommand(api, o));
    });

  keys
    .command('list')
    .description('keys with their project, scopes, prefix, creation, last use and revocation (never the secret)')
    .option('--project <project>', 'only the keys of this project')
    .option('--json', JSON_FLAG)
    .action(async (o: { project?: string; json?: boolean }) => {
      const { keysListCommand } = await import('../keys');
      await withApi((api) => keysListCommand(api, o.project, o.json === true));
    });

  keys
    .command('revoke')
    .description('revoke a key: requests with it are refused from then on')
    .argument('<key>', 'its id, project/name, name (when only one project has it), or prefix (fry_...)')
    .option('--json', JSON_FLAG)
    .action(async (ref: string, o: { json?: boolean }) => {
      const { keysRevokeCommand } = await import('../keys');
      await withApi((api) => keysRevokeCommand(api, ref, o.json === true));
    });

  program
    .command('audit')
    .description('who changed what, when and from where (newest first): deploys, approvals, operations, keys')
    .option('--deployment <deployment>', `only the entries of this deployment (${DEPLOYMENT})`)
    .option('--limit <n>', 'at most this many entries (default 100, at most 1000)')
    .option('--json', JSON_FLAG)
    .action(async (o: import('../audit').AuditFlags) => {
      const { auditCommand } = await import('../audit');
      await withApi((api) => auditCommand(api, o));
    });

  program
    .command('recommendations')
    .description(
      'savings the monitor record shows (scale to zero, right-size), each with its expected saving and evidence',
    )
    .argument('[deployment]', `one deployment (${DEPLOYMENT}); default: every deployment you can see`)
    .option('--json', JSON_FLAG)
    .action(async (ref: string | undefined, o: { json?: boolean }) => {
      const { recommendationsCommand } = await import('../recommendations');
      await withApi((api) => recommendationsCommand(api, ref, o.json === true));
    });

  program
    .command('apply')
    .description(
      'apply a recommendation by its id, if it still holds (never silently: one applied or outdated is refused)',
    )
    .argument('<recommendation>', 'an id from `ferry recommendations`')
    .option('--json', JSON_FLAG)
    .action(async (id: string, o: { json?: boolean }) => {
      const { applyCommand } = await import('../recommendations');
      await withApi((api) => applyCommand(api, id, o.json === true));
    });
}
