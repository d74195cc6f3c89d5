// The order states of the API (OrderState) as the HUD names and colours them. The colours follow
// TWS's status colours: grey not sent, blue sent, green working/filled, magenta cancel pending,
// red cancelled/rejected; the values live in hud.css as --st-<state>.
export const UI_STATE = Object.freeze({
  STAGED: 'staged',
  PENDING: 'pending',
  ACCEPTED: 'working',
  PARTIALLY_FILLED: 'partially-filled',
  PENDING_CANCEL: 'cancel-pending',
  FILLED: 'filled',
  CANCELLED: 'cancelled',
  REJECTED: 'rejected',
  EXPIRED: 'expired',
});

export const LABEL = Object.freeze({
  staged: 'Staged',
  pending: 'Pending',
  working: 'Working',
  'partially-filled': 'PartiallyFilled',
  'cancel-pending': 'CancelPending',
  filled: 'Filled',
  cancelled: 'Cancelled',
  rejected: 'Rejected',
  expired: 'Expired',
});

// Open: the order can still trade (drawn on the ladder, cancellable in the blotter).
export const OPEN = new Set(['pending', 'working', 'partially-filled', 'cancel-pending']);

export function uiState(apiState) {
  return UI_STATE[apiState] || 'pending';
}

export function stateColour(ui) {
  return getComputedStyle(document.documentElement).getPropertyValue(`--st-${ui}`).trim() || '#888';
}
