// Split virtqueue layout (virtio 1.2, section 2.7), shared by the device side and the simulated driver.

/** struct virtq_desc: le64 addr, le32 len, le16 flags, le16 next. */
export const DESC_SIZE = 16;
export const VIRTQ_DESC_F_NEXT = 1;
export const VIRTQ_DESC_F_WRITE = 2;
export const VIRTQ_DESC_F_INDIRECT = 4;

/** struct virtq_avail: le16 flags, le16 idx, le16 ring[num], le16 used_event. */
export const VIRTQ_AVAIL_F_NO_INTERRUPT = 1;
/** struct virtq_used: le16 flags, le16 idx, {le32 id, le32 len} ring[num], le16 avail_event. */
export const VIRTQ_USED_F_NO_NOTIFY = 1;
export const USED_ELEM_SIZE = 8;

/** Largest split queue the spec allows. */
export const MAX_QUEUE_SIZE = 32768;

export const descTableSize = (num: number): number => DESC_SIZE * num;
export const availRingSize = (num: number): number => 4 + 2 * num + 2;
export const usedRingSize = (num: number): number => 4 + USED_ELEM_SIZE * num + 2;

/** Alignments the spec requires of each part's address. */
export const DESC_ALIGN = 16;
export const AVAIL_ALIGN = 2;
export const USED_ALIGN = 4;

/** virtio's vring_need_event: did new_idx move past event_idx since old_idx? (16-bit wrap) */
export function vringNeedEvent(eventIdx: number, newIdx: number, oldIdx: number): boolean {
  return ((newIdx - eventIdx - 1) & 0xffff) < ((newIdx - oldIdx) & 0xffff);
}

export function isValidQueueSize(num: number): boolean {
  return Number.isInteger(num) && num > 0 && num <= MAX_QUEUE_SIZE && (num & (num - 1)) === 0;
}
