/**
 * The one place names are validated: models, versions, deployments, revisions, projects and key names.
 * Every surface checks a name here before using it in a path, a workflow id, an S3 key, an image
 * repository or a SQL row, so a name like `../x` or `<script>` is refused with the rule it breaks.
 *
 * Models are lower-case because they become image repository names; the others may use upper case.
 * Lengths keep derived ids (`deploy:<model>:<version>`, `<model>-<version>`, `ferry/<model>`) well
 * inside the limits of Temporal ids, DNS labels of Kubernetes objects (63) and registry paths.
 */
export type NameKind = 'model' | 'version' | 'deployment' | 'revision' | 'project' | 'key name';

const RULES: Record<NameKind, { pattern: RegExp; rule: string }> = {
  model: {
    pattern: /^[a-z0-9][a-z0-9_.-]{0,62}$/,
    rule: 'lower-case letters, digits, "_", "." or "-", 1-63 long, starting with a letter or digit',
  },
  version: {
    pattern: /^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$/,
    rule: 'letters, digits, "_", "." or "-", 1-63 long, starting with a letter or digit',
  },
  deployment: {
    pattern: /^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$/,
    rule: 'letters, digits, "_", "." or "-", 1-128 long, starting with a letter or digit',
  },
  revision: {
    pattern: /^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$/,
    rule: 'letters, digits, "_", "." or "-", 1-63 long, starting with a letter or digit',
  },
  project: {
    pattern: /^[a-z0-9][a-z0-9-]{0,39}$/,
    rule: 'lower-case letters, digits or "-", 1-40 long, starting with a letter or digit',
  },
  'key name': {
    pattern: /^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$/,
    rule: 'letters, digits, "_", "." or "-", 1-63 long, starting with a letter or digit',
  },
};

export class InvalidNameError extends Error {
  override name = 'InvalidNameError';
  constructor(
    readonly kind: NameKind,
    readonly value: string,
  ) {
    const shown =
      value.length > 80 ? `${JSON.stringify(value.slice(0, 80))}… (${value.length} characters)` : JSON.stringify(value);
    super(`invalid ${kind} name ${shown}: use ${RULES[kind].rule}`);
  }
}

export function isValidName(kind: NameKind, value: unknown): value is string {
  return typeof value === 'string' && RULES[kind].pattern.test(value);
}

export function assertValidName(kind: NameKind, value: unknown): string {
  if (!isValidName(kind, value)) throw new InvalidNameError(kind, String(value));
  return value;
}

/** The pattern as a JSON-schema `pattern`, so HTTP schemas and this module cannot drift apart. */
export function namePattern(kind: NameKind): string {
  return RULES[kind].pattern.source;
}
