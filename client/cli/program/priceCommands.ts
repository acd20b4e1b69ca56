/** `ferry prices` and `ferry prices refresh`: the dated price catalog. */
import type { Command } from 'commander';
import { REFRESH_SOURCES } from '../../../lib/cost/catalog/refresh/sources';
import type { CliContext } from './context';

export function addPriceCommands(program: Command, _context: CliContext): void {
  // ---- prices ----
  program.commandsGroup('Prices (need no Ferry services):');

  const prices = program
    .command('prices')
    .description('the dated price catalog the cost engine plans with: instances, serverless, egress (* = estimate)')
    .option('--provider <provider>', 'only aws, gcp or azure')
    .option('--region <region>', 'only this region, or a pattern such as us-* or europe-*')
    .option('--min-vcpus <n>', 'only instance types with at least N vCPUs (serverless: a vCPU limit of at least N)')
    .option('--arch <arch>', 'only x86_64 or arm64')
    .option('--catalog <dir>', 'a catalog directory other than the shipped snapshot (e.g. from `ferry prices refresh`)')
    .option('--json', 'print the matching rows, with their sources, as JSON')
    .action(async (o: import('../prices').PricesFlags) => {
      const { pricesCommand } = await import('../prices');
      pricesCommand(o);
    });

  prices
    .command('refresh')
    .description("a new catalog directory from the providers' public price files (downloaded first: see below)")
    .option('--aws-offer <files...>', 'AWS Price List offer files for EC2 (one per region)')
    .option('--aws-spot <files...>', 'DescribeSpotPriceHistory answers (JSON)')
    .option('--aws-advisor <file>', "the Spot Instance Advisor's data file")
    .option('--gcp-skus <files...>', "Compute Engine's Cloud Billing Catalog SKU pages")
    .option('--azure-retail <files...>', 'Azure Retail Prices API pages for Virtual Machines')
    .option('--regions <a,b>', 'only these regions (names or patterns such as us-*)')
    .option('--types <a,b>', 'only these instance types (names or patterns such as m7g.*)')
    .option('--date <YYYY-MM-DD>', 'the day the files were downloaded (default: today, UTC)')
    .option('--from <dir>', 'the catalog whose other rows are kept (default: the shipped snapshot)')
    .requiredOption('--out <dir>', 'where the new catalog is written')
    .addHelpText('after', REFRESH_SOURCES)
    .action(async (o: import('../prices').PricesRefreshFlags) => {
      const { pricesRefreshCommand } = await import('../prices');
      await pricesRefreshCommand(o);
    });
}
