/**
 * The build context and COPY's file work for the Dockerfile builder: open a context
 * ({@link openBuildContext}), match `.dockerignore` ({@link createIgnoreMatcher}), copy sources
 * into a step's root ({@link copyInto}), key them for the cache ({@link digestSources}), and
 * resolve `--chown` and `USER` against a root ({@link resolveChown}, {@link lookupUser}).
 *
 * @module
 */
export { copyInto, type CopyOptions, type CopyResult } from './copy.js';
export { digestSources, type DigestOptions } from './digest.js';
export { HashCache } from './hash-cache.js';
export { createIgnoreMatcher, readIgnorePatterns, NO_IGNORE, type IgnoreMatcher } from './ignore.js';
export { globMatch, hasGlobMeta, isValidGlob } from './match.js';
export { openBuildContext, type BuildContext, type ContextSource, type OpenContextOptions } from './open.js';
export type { Owner } from './root.js';
export type { SourceSelection } from './select.js';
export { lookupUser, resolveChown } from './user.js';
