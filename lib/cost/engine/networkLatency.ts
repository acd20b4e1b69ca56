/**
 * Round trips from the users' region to a serving region, for `--users-in`. Cloud regions are placed in
 * geographic areas; a round trip is the table's figure between the two areas. The figures are ESTIMATES
 * in the range that public inter-region latency dashboards show (AWS's and Azure's published
 * inter-region round-trip tables are in that range): same region 2 ms, same area 10–30 ms, across an
 * ocean 70–250 ms. They are labelled as estimates wherever they are shown.
 */

export type Area = 'us-east' | 'us-west' | 'eu' | 'ap-northeast' | 'ap-southeast' | 'ap-south' | 'sa' | 'other';

/** Region name patterns → area (AWS, GCP and Azure names). */
const AREAS: Array<[RegExp, Area]> = [
  [
    /^(us-east|us-central|northamerica-northeast|ca-central|eastus|centralus|northcentralus|southcentralus|canada)/,
    'us-east',
  ],
  [/^(us-west|westus|westcentralus|us-south)/, 'us-west'],
  [
    /^(eu-|europe-|westeurope|northeurope|uksouth|ukwest|francecentral|germanywestcentral|swedencentral|switzerlandnorth|norwayeast)/,
    'eu',
  ],
  [/^(ap-northeast|asia-northeast|japaneast|japanwest|koreacentral)/, 'ap-northeast'],
  [/^(ap-southeast|asia-southeast|australia|southeastasia|eastasia|asia-east)/, 'ap-southeast'],
  [/^(ap-south|asia-south|centralindia|southindia)/, 'ap-south'],
  [/^(sa-|southamerica-|brazilsouth)/, 'sa'],
];

export function areaOf(region: string): Area {
  for (const [re, area] of AREAS) if (re.test(region)) return area;
  return 'other';
}

/** Estimated round trip between areas, ms (symmetric). */
const AREA_RTT: Record<Area, Partial<Record<Area, number>>> = {
  'us-east': {
    'us-east': 15,
    'us-west': 65,
    eu: 85,
    'ap-northeast': 160,
    'ap-southeast': 220,
    'ap-south': 200,
    sa: 120,
  },
  'us-west': { 'us-west': 15, eu: 140, 'ap-northeast': 110, 'ap-southeast': 170, 'ap-south': 220, sa: 180 },
  eu: { eu: 20, 'ap-northeast': 230, 'ap-southeast': 170, 'ap-south': 120, sa: 200 },
  'ap-northeast': { 'ap-northeast': 15, 'ap-southeast': 70, 'ap-south': 120, sa: 260 },
  'ap-southeast': { 'ap-southeast': 20, 'ap-south': 60, sa: 320 },
  'ap-south': { 'ap-south': 20, sa: 300 },
  sa: { sa: 20 },
  other: {},
};

/** Unknown areas: the worst figure of the table (conservative). */
const UNKNOWN_RTT = 250;
const SAME_REGION_RTT = 2;

export interface RoundTrip {
  ms: number;
  basis: 'estimate';
}

export function roundTrip(usersIn: string, region: string): RoundTrip {
  if (usersIn === region) return { ms: SAME_REGION_RTT, basis: 'estimate' };
  const a = areaOf(usersIn);
  const b = areaOf(region);
  const ms = AREA_RTT[a][b] ?? AREA_RTT[b][a] ?? UNKNOWN_RTT;
  return { ms, basis: 'estimate' };
}
