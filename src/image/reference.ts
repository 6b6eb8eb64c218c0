/**
 * Image references: Docker's grammar (distribution/reference) and its normalisation.
 *
 * ```text
 * reference        := name [ ":" tag ] [ "@" digest ]
 * name             := [ domain "/" ] path-component [ "/" path-component ]*
 * domain           := host [ ":" port ]          host: DNS name or [IPv6]
 * path-component   := [a-z0-9]+ ( ( "." | "_" | "__" | "-"+ ) [a-z0-9]+ )*
 * tag              := [\w][\w.-]{0,127}
 * digest           := algorithm ":" hex           (sha256: 64 hex, sha512: 128 hex)
 * ```
 *
 * Normalisation follows `ParseNormalizedNamed`: the first path element is a domain only when it
 * contains `.` or `:`, is `localhost`, or has an uppercase letter; otherwise the domain is
 * `docker.io`, and a single-element name gets the `library/` prefix. `index.docker.io` is an
 * alias of `docker.io`. A reference with neither tag nor digest gets the tag `latest`.
 *
 * @module
 */
import { InvalidArgumentError } from '../errors.js';

/** The domain of Docker Hub, as normalised references spell it. */
export const DEFAULT_DOMAIN = 'docker.io';
/** The legacy spelling of Docker Hub's domain, normalised to {@link DEFAULT_DOMAIN}. */
export const LEGACY_DEFAULT_DOMAIN = 'index.docker.io';
/** The namespace of Docker Hub's official images. */
export const OFFICIAL_REPO_PREFIX = 'library/';
/** The tag added to a reference that has neither tag nor digest. */
export const DEFAULT_TAG = 'latest';
/** The longest repository name (domain and path) the grammar accepts. */
export const NAME_TOTAL_LENGTH_MAX = 255;

const alphanumeric = '[a-z0-9]+';
const separator = '(?:[._]|__|[-]+)';
const pathComponent = `${alphanumeric}(?:${separator}${alphanumeric})*`;
const domainComponent = '(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])';
const ipv6 = '\\[(?:[a-fA-F0-9:]+)\\]';
const domainName = `${domainComponent}(?:\\.${domainComponent})*`;
const domainAndPort = `(?:${domainName}|${ipv6})(?::[0-9]+)?`;
const tagPat = '[\\w][\\w.-]{0,127}';
const digestPat = '[A-Za-z][A-Za-z0-9]*(?:[-_+.][A-Za-z][A-Za-z0-9]*)*:[0-9a-fA-F]{32,}';
const namePat = `(?:${domainAndPort}/)?${pathComponent}(?:/${pathComponent})*`;

const REFERENCE_RE = new RegExp(`^(${namePat})(?::(${tagPat}))?(?:@(${digestPat}))?$`);
const ANCHORED_NAME_RE = new RegExp(`^(?:(${domainAndPort})/)?(${pathComponent}(?:/${pathComponent})*)$`);
const TAG_RE = new RegExp(`^${tagPat}$`);
const IDENTIFIER_RE = /^[a-f0-9]{64}$/;

/** Hex lengths of the digest algorithms berth accepts. */
const DIGEST_HEX_LENGTH: Readonly<Record<string, number>> = { sha256: 64, sha384: 96, sha512: 128 };

function invalid(input: string, why: string, field = 'reference'): InvalidArgumentError {
  return new InvalidArgumentError(field, `'${input}' is not a valid image reference: ${why}`);
}

/**
 * Checks a digest string (`algorithm:hex`) the way go-digest does: a known algorithm and a
 * lowercase hex value of that algorithm's length. Returns it unchanged.
 *
 * @throws InvalidArgumentError (field `digest`) when it is malformed.
 */
export function validateDigest(digest: string, field = 'digest'): string {
  const i = digest.indexOf(':');
  const algorithm = digest.slice(0, i);
  const hex = digest.slice(i + 1);
  const len = DIGEST_HEX_LENGTH[algorithm];
  if (i <= 0 || len === undefined) {
    throw new InvalidArgumentError(field, `'${digest}' has no supported digest algorithm (use sha256:<64 hex>)`);
  }
  if (hex.length !== len || !/^[a-f0-9]+$/.test(hex)) {
    throw new InvalidArgumentError(field, `'${digest}' must be ${algorithm}: followed by ${len} lowercase hex digits`);
  }
  return digest;
}

/** Is `tag` a valid tag (`[\w][\w.-]{0,127}`)? */
export function isValidTag(tag: string): boolean {
  return TAG_RE.test(tag);
}

/**
 * A parsed, normalised image reference, immutable. `toString()` gives the canonical form
 * (`docker.io/library/ubuntu:latest`), {@link ImageReference.familiar} the short form Docker
 * prints (`ubuntu:latest`).
 */
export class ImageReference {
  /** The registry host, with port when given: `docker.io`, `localhost:5000`, `[::1]:5000`. */
  readonly domain: string;
  /** The repository path inside the registry: `library/ubuntu`, `a/b`. */
  readonly path: string;
  /** The tag; absent only when the reference was given with a digest and no tag. */
  readonly tag: string | undefined;
  /** The content digest (`sha256:…`); absent when the reference names a tag only. */
  readonly digest: string | undefined;

  /** Builds a reference from already validated parts; use {@link parseReference} for strings. */
  constructor(domain: string, path: string, tag?: string, digest?: string) {
    this.domain = domain;
    this.path = path;
    this.tag = tag;
    this.digest = digest;
  }

  /** The repository name with domain: `docker.io/library/ubuntu`. */
  get name(): string {
    return `${this.domain}/${this.path}`;
  }

  /** The repository name as Docker prints it: `ubuntu`, `user/app`, `localhost:5000/a/b`. */
  get familiarName(): string {
    if (this.domain !== DEFAULT_DOMAIN) return this.name;
    const rest = this.path.slice(OFFICIAL_REPO_PREFIX.length);
    return this.path.startsWith(OFFICIAL_REPO_PREFIX) && !rest.includes('/') ? rest : this.path;
  }

  /** The whole reference as Docker prints it: `ubuntu:14.04`, `user/app@sha256:…`. */
  get familiar(): string {
    return this.familiarName + this.#suffix();
  }

  /** A copy with another tag (and no digest). */
  withTag(tag: string): ImageReference {
    if (!isValidTag(tag)) throw invalid(tag, 'a tag must match [A-Za-z0-9_][A-Za-z0-9_.-]{0,127}');
    return new ImageReference(this.domain, this.path, tag);
  }

  /** The canonical form: `docker.io/library/ubuntu:latest`, `localhost:5000/a/b@sha256:…`. */
  toString(): string {
    return this.name + this.#suffix();
  }

  #suffix(): string {
    return (this.tag === undefined ? '' : `:${this.tag}`) + (this.digest === undefined ? '' : `@${this.digest}`);
  }
}

/** Splits a name into domain and remainder as `splitDockerDomain` does. */
function splitDockerDomain(name: string): [domain: string, remainder: string] {
  const i = name.indexOf('/');
  let domain: string;
  let remainder: string;
  if (i === -1) return [DEFAULT_DOMAIN, OFFICIAL_REPO_PREFIX + name];
  const first = name.slice(0, i);
  if (first === 'localhost' || /[.:]/.test(first) || first.toLowerCase() !== first) {
    domain = first === LEGACY_DEFAULT_DOMAIN ? DEFAULT_DOMAIN : first;
    remainder = name.slice(i + 1);
  } else {
    domain = DEFAULT_DOMAIN;
    remainder = name;
  }
  if (domain === DEFAULT_DOMAIN && !remainder.includes('/')) remainder = OFFICIAL_REPO_PREFIX + remainder;
  return [domain, remainder];
}

/** Parses a fully qualified reference string with the grammar alone (no normalisation). */
function parseQualified(input: string, s: string, field: string): ImageReference {
  const m = REFERENCE_RE.exec(s);
  if (!m) {
    if (REFERENCE_RE.test(s.toLowerCase())) throw invalid(input, 'repository name must be lowercase', field);
    throw invalid(input, 'expected [registry/]repository[:tag][@digest], e.g. ubuntu:24.04', field);
  }
  const [, name = '', tag, digest] = m;
  if (name.length > NAME_TOTAL_LENGTH_MAX) {
    throw invalid(input, `repository name must not be more than ${NAME_TOTAL_LENGTH_MAX} characters`, field);
  }
  const nm = ANCHORED_NAME_RE.exec(name);
  if (!nm) throw invalid(input, 'malformed repository name', field);
  const [, domain, path = ''] = nm;
  if (domain === undefined) throw invalid(input, 'missing registry domain', field);
  if (digest !== undefined) {
    try {
      validateDigest(digest);
    } catch (e) {
      throw invalid(input, (e as Error).message.replace(/^invalid digest: /, ''), field);
    }
  }
  return new ImageReference(domain, path, tag, digest);
}

/** Options for {@link parseReference}. */
export interface ParseReferenceOptions {
  /** Add the tag `latest` when the reference has neither tag nor digest. Default: true. */
  defaultTag?: boolean;
  /** The field named by the InvalidArgumentError thrown for a malformed reference. Default `reference`. */
  field?: string;
}

/**
 * Parses and normalises a reference as `docker pull` does: `ubuntu` →
 * `docker.io/library/ubuntu:latest`.
 *
 * @throws InvalidArgumentError (field `reference`) when it is malformed, has an uppercase
 *   repository, or is a bare 64-hex image id.
 *
 * @example
 * ```ts
 * parseReference('ubuntu:14.04').toString(); // 'docker.io/library/ubuntu:14.04'
 * parseReference('localhost:5000/a/b').familiar; // 'localhost:5000/a/b:latest'
 * ```
 */
export function parseReference(input: string, options: ParseReferenceOptions = {}): ImageReference {
  const field = options.field ?? 'reference';
  if (typeof input !== 'string' || input === '')
    throw invalid(String(input), 'repository name must have at least one component', field);
  if (IDENTIFIER_RE.test(input))
    throw invalid(input, 'a 64-character hexadecimal string is an image id, not a repository name', field);
  const [domain, remainder] = splitDockerDomain(input);
  const colon = remainder.indexOf(':');
  const remote = colon === -1 ? remainder : remainder.slice(0, colon);
  if (remote.toLowerCase() !== remote) throw invalid(input, `repository name (${remote}) must be lowercase`, field);
  const ref = parseQualified(input, `${domain}/${remainder}`, field);
  if (options.defaultTag !== false && ref.tag === undefined && ref.digest === undefined) {
    return new ImageReference(ref.domain, ref.path, DEFAULT_TAG);
  }
  return ref;
}

/** The result of {@link parseAnyReference}: an image id (full digest) or a named reference. */
export type AnyReference = { kind: 'id'; id: string } | { kind: 'named'; ref: ImageReference };

/**
 * Parses what `docker inspect` accepts as an image argument, as `ParseAnyReference` does: a bare
 * 64-hex id or `sha256:<64 hex>` is an id; anything else must be a named reference. (Short id
 * prefixes parse as names; the image store falls back to prefix search when no tag matches.)
 *
 * @throws InvalidArgumentError (naming `field`, default `reference`) when it is neither.
 */
export function parseAnyReference(input: string, field = 'reference'): AnyReference {
  if (IDENTIFIER_RE.test(input)) return { kind: 'id', id: `sha256:${input}` };
  const colon = input.indexOf(':');
  const hexLength = DIGEST_HEX_LENGTH[input.slice(0, colon)];
  if (hexLength !== undefined && input.length === colon + 1 + hexLength && /^[a-f0-9]+$/.test(input.slice(colon + 1))) {
    return { kind: 'id', id: input };
  }
  return { kind: 'named', ref: parseReference(input, { field }) };
}
