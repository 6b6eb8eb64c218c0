/**
 * Persistent state primitives shared by every service: atomic files, cross-process locks, and a
 * store of JSON records with unique names.
 *
 * @module
 */
export {
  writeFileAtomic,
  writeFileAtomicSync,
  createFileExclusive,
  createFileExclusiveSync,
  readJsonFile,
  readJsonFileSync,
  fsyncDir,
  isTempFileName,
  type WriteFileAtomicOptions,
} from './atomic.js';
export { acquireLock, withLock, withSharedLock, type LockHandle, type LockOptions } from './lock.js';
export { NameRegistry, encodeName, decodeName, type NameRegistryOptions } from './names.js';
export {
  RecordStore,
  RECORD_ID_PATTERN,
  corruptRecordChannel,
  type RecordListOptions,
  type RecordStoreOptions,
} from './record-store.js';
export { SubsetIndex } from './subsets.js';
export { fsError, isErrno, errnoCode } from './fs-error.js';
export { removeTree, removeTreeSync } from './remove-tree.js';
