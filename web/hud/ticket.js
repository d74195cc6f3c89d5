// The order ticket: what the trader wants to trade, staged (checked and hashed by the floor,
// nothing sent) for Execute. A ladder click or a hotkey stages a limit with the ticket's quantity;
// staging never executes. The Kelly suggestion and the Max Trade Size come from the floor's own
// sizer (sizingSuggestion), so the HUD never sizes with numbers of its own.
import * as store from './store.js';
import { gql, GqlError } from './gql.js';
import { el, byId } from './dom.js';
import { stepPrice, DEFAULT_GRID } from './prices.js';
import { grid } from './ticks.js';
import { hotkey } from './hotkeys.js';
import { onNext } from './topics.js';
import { sizingSuggestion } from './sizing.js';

const STAGE = `mutation($t: OrderTicketInput!) { stageOrder(ticket: $t) { __typename
  ... on Staged { stagedId orderHash orderHashPrefix account symbol side orderType quantity tif
                  limitPrice stopPrice stopLoss createdAt }
  ... on Invalid { reason detail field } } }`;

// Which price fields each order type takes (the floor refuses the others).
const PRICES = {
  LMT: { limit: true, stop: false },
  MKT: { limit: false, stop: false },
  STP: { limit: false, stop: true },
  STP_LMT: { limit: true, stop: true },
};
// The floor's field names (Invalid.field) -> the ticket's inputs.
const FIELD_INPUT = {
  symbol: 'ticket-symbol',
  account: 'ticket-symbol',
  side: 'ticket-side',
  order_type: 'ticket-type',
  quantity: 'ticket-qty',
  limit_price: 'ticket-limit',
  stop_price: 'ticket-stop',
  stop_loss: 'ticket-stoploss',
  tif: 'ticket-tif',
};
const WHOLE = /^[1-9]\d{0,8}$/;
const SYMBOL = /^[A-Z][A-Z0-9.]{0,11}$/;

function field(label, input, name) {
  return el('label', { class: 'field', dataset: { field: name } }, el('span', { class: 'label' }, label), input,
    el('span', { class: 'field-error', dataset: { for: input.id } }));
}

function select(id, options, value) {
  const s = el('select', { id }, ...options.map((o) => el('option', { value: o }, o)));
  s.value = value;
  return s;
}

function buildForm() {
  const input = (id, attrs = {}) => el('input', { id, autocomplete: 'off', spellcheck: 'false', ...attrs });
  return el('form', { id: 'ticket', novalidate: true },
    el('h2', {}, 'Order ticket'),
    el('div', { class: 'grid2' },
      field('Symbol', input('ticket-symbol', { maxlength: 12 }), 'symbol'),
      field('Side', select('ticket-side', ['BUY', 'SELL'], 'BUY'), 'side'),
      field('Quantity', input('ticket-qty', { inputmode: 'numeric', value: '100' }), 'quantity'),
      field('Type', select('ticket-type', ['LMT', 'MKT', 'STP', 'STP_LMT'], 'LMT'), 'order_type'),
      field('Limit', input('ticket-limit', { inputmode: 'decimal', placeholder: '187.25' }), 'limit_price'),
      field('Stop', input('ticket-stop', { inputmode: 'decimal' }), 'stop_price'),
      field('Stop-loss', input('ticket-stoploss', { inputmode: 'decimal', title: 'Where the risk gate measures your loss to' }), 'stop_loss'),
      field('TIF', select('ticket-tif', ['DAY', 'GTC', 'IOC'], 'DAY'), 'tif'),
    ),
    el('div', { class: 'sizing' },
      field('Win prob.', input('ticket-edge', { inputmode: 'decimal', placeholder: '0.55', title: 'Your claimed probability of winning (0-1): the Kelly suggestion sizes from it' }), 'edge'),
      el('button', { id: 'ticket-suggestion', type: 'button', disabled: true, title: 'Kelly-sized quantity: click to use it' }, 'Kelly —'),
      el('span', { id: 'ticket-max', class: 'dim' }, 'Max —'),
    ),
  );
}

export function mountTicket(root) {
  const form = buildForm();
  root.prepend(form);
  const $ = (id) => byId(id);
  const stageButton = $('stage');
  const status = $('ticket-status');

  function setStatus(state, text) {
    status.dataset.state = state;
    status.textContent = text;
  }

  function clearFieldErrors() {
    for (const node of form.querySelectorAll('.field-error')) node.textContent = '';
    for (const node of form.querySelectorAll('[aria-invalid]')) node.removeAttribute('aria-invalid');
  }

  function fieldError(name, text) {
    const id = FIELD_INPUT[name] || name;
    const input = $(id);
    const slot = form.querySelector(`.field-error[data-for="${id}"]`);
    if (input) input.setAttribute('aria-invalid', 'true');
    if (slot) slot.textContent = text;
  }

  function applyType() {
    const p = PRICES[$('ticket-type').value] || PRICES.LMT;
    $('ticket-limit').disabled = !p.limit;
    $('ticket-stop').disabled = !p.stop;
  }

  function patch(p) {
    if (!p) return;
    if (p.symbol) $('ticket-symbol').value = String(p.symbol).toUpperCase();
    if (p.side) $('ticket-side').value = p.side;
    if (p.orderType) $('ticket-type').value = p.orderType;
    if (p.quantity !== undefined && p.quantity !== null) $('ticket-qty').value = String(p.quantity);
    if (p.limitPrice !== undefined && p.limitPrice !== null) $('ticket-limit').value = p.limitPrice;
    applyType();
    suggestion.refresh();
  }

  // The ticket as OrderTicketInput; null (and the field marked) when it cannot even be sent.
  function readTicket() {
    clearFieldErrors();
    const symbol = $('ticket-symbol').value.trim().toUpperCase();
    const qty = $('ticket-qty').value.trim();
    const type = $('ticket-type').value;
    if (!symbol) {
      fieldError('symbol', 'enter a symbol');
      return null;
    }
    if (!WHOLE.test(qty)) {
      fieldError('quantity', 'a whole number of shares above 0');
      return null;
    }
    const price = (id) => {
      const text = $(id).value.trim();
      return text && !$(id).disabled ? text : null;
    };
    return {
      account: store.latest('account'),
      symbol,
      side: $('ticket-side').value,
      orderType: type,
      quantity: Number(qty),
      tif: $('ticket-tif').value,
      limitPrice: price('ticket-limit'),
      stopPrice: price('ticket-stop'),
      stopLoss: price('ticket-stoploss'),
    };
  }

  let staging = false;
  let dropped = null; // a ladder click or B/S refused while staging, told with the result
  async function stage() {
    if (staging) return null;
    const ticket = readTicket();
    if (!ticket) {
      setStatus('invalid', 'Fix the marked field, then Stage.');
      return null;
    }
    staging = true;
    dropped = null;
    stageButton.disabled = true;
    setStatus('working', 'Staging…');
    try {
      const result = (await gql(STAGE, { t: ticket })).stageOrder;
      if (result.__typename === 'Invalid') {
        if (result.field) fieldError(result.field, result.detail);
        setStatus('invalid', `${result.detail} (${result.reason})`);
        return result;
      }
      store.publish('staged', result);
      const price = result.limitPrice ? ` @ ${result.limitPrice}` : '';
      const stop = result.stopPrice ? ` stop ${result.stopPrice}` : '';
      const lost = dropped ? ` (${dropped} was not taken: it came while staging)` : '';
      setStatus('staged', `Staged ${result.side} ${result.quantity} ${result.symbol} ${result.orderType}${price}${stop} ${result.tif} · ${result.orderHashPrefix}: Execute to send.${lost}`);
      return result;
    } catch (err) {
      setStatus('error', err instanceof GqlError ? `Not staged: ${err.message}` : `Not staged: ${err}`);
      return null;
    } finally {
      staging = false;
      stageButton.disabled = false;
    }
  }

  // A ladder click or B/S: a limit at that price with the ticket's quantity, staged only.
  // While a stage is in flight the click is refused before it touches the ticket: the ticket
  // must keep showing what Execute would send.
  function stageAt({ symbol, side, price }) {
    if (staging) {
      dropped = `${side} ${price}`;
      setStatus('working', `Still staging the last order: ${dropped} not taken, click again.`);
      return null;
    }
    patch({ symbol, side, orderType: 'LMT', limitPrice: price });
    return stage();
  }

  function stepLimit(steps) {
    const input = $('ticket-limit');
    if (input.disabled) return;
    const base = input.value.trim() || defaultPrice($('ticket-side').value);
    const next = base && stepPrice(base, steps, tickGrid());
    if (next) {
      input.value = next;
      suggestion.refresh();
    }
  }

  // The book's own grid for the ticket's symbol (its snapshot's tickSize), else the default.
  function tickGrid() {
    const touch = store.latest('touch');
    if (!touch || !touch.tickSize || touch.symbol !== $('ticket-symbol').value.trim().toUpperCase()) return DEFAULT_GRID;
    try {
      return grid(touch.tickSize);
    } catch {
      return DEFAULT_GRID;
    }
  }

  function defaultPrice(side) {
    const touch = store.latest('touch');
    if (!touch || touch.symbol !== $('ticket-symbol').value.trim().toUpperCase()) return null;
    return side === 'BUY' ? touch.bid || touch.ask : touch.ask || touch.bid;
  }

  const suggestion = sizingSuggestion({
    button: $('ticket-suggestion'),
    max: $('ticket-max'),
    edge: $('ticket-edge'),
    error: form.querySelector('.field-error[data-for="ticket-edge"]'),
    ticket: () => {
      const t = readTicketQuietly();
      if (t && !t.limitPrice && t.orderType !== 'MKT') t.limitPrice = defaultPrice(t.side);
      return t;
    },
    use: (quantity) => {
      $('ticket-qty').value = String(quantity);
      suggestion.refresh();
    },
  });

  function readTicketQuietly() {
    const symbol = $('ticket-symbol').value.trim().toUpperCase();
    const qty = $('ticket-qty').value.trim();
    if (!symbol || !store.latest('account')) return null;
    const text = (id) => ($(id).disabled ? null : $(id).value.trim() || null);
    return {
      account: store.latest('account'),
      symbol,
      side: $('ticket-side').value,
      orderType: $('ticket-type').value,
      quantity: WHOLE.test(qty) ? Number(qty) : 1,
      tif: $('ticket-tif').value,
      limitPrice: text('ticket-limit'),
      stopPrice: text('ticket-stop'),
      stopLoss: $('ticket-stoploss').value.trim() || null,
    };
  }

  stageButton.addEventListener('click', stage);
  form.addEventListener('submit', (e) => {
    e.preventDefault();
    stage();
  });
  // Enter in a field stages (a form with no submit button does not submit on Enter by itself).
  form.addEventListener('keydown', (e) => {
    if (e.key === 'Enter' && e.target.matches('input')) {
      e.preventDefault();
      stage();
    }
  });
  $('ticket-type').addEventListener('change', applyType);
  for (const id of ['ticket-symbol', 'ticket-side', 'ticket-qty', 'ticket-type', 'ticket-limit', 'ticket-stop', 'ticket-stoploss', 'ticket-edge']) {
    $(id).addEventListener('input', () => suggestion.refresh());
  }

  store.on('symbol', (s) => {
    $('ticket-symbol').value = s;
    suggestion.refresh();
  });
  // The HUD trades what the ticket names: a new symbol re-points the ladder (and with it the
  // touch and the feed that B/S and Execute check).
  $('ticket-symbol').addEventListener('change', () => {
    const symbol = $('ticket-symbol').value.trim().toUpperCase();
    if (SYMBOL.test(symbol) && symbol !== store.latest('symbol')) store.publish('symbol', symbol);
  });
  store.on('account', () => suggestion.refresh());
  onNext('ticket', patch);
  onNext('ladder-click', stageAt);
  // A new stage elsewhere (or its execution) makes the ticket's last message old.
  store.on('staged', (s) => {
    if (!s && status.dataset.state === 'staged') setStatus('idle', '');
  });

  hotkey('ArrowUp', 'Ticket limit up one tick', () => stepLimit(+1));
  hotkey('ArrowDown', 'Ticket limit down one tick', () => stepLimit(-1));
  hotkey('B', 'Stage a BUY limit at the ask (the ticket\'s quantity)', () => stageAtTouch('BUY'));
  hotkey('S', 'Stage a SELL limit at the bid (the ticket\'s quantity)', () => stageAtTouch('SELL'));

  function stageAtTouch(side) {
    const symbol = store.latest('symbol');
    const touch = store.latest('touch');
    const feed = store.latest('feed');
    if (feed && feed.symbol === symbol && !feed.ok) {
      setStatus('invalid', `The book is out of sync (${feed.reason || 'stale'}): nothing staged until it resyncs.`);
      return;
    }
    const price = touch && touch.symbol === symbol ? (side === 'BUY' ? touch.ask : touch.bid) : null;
    if (!price) {
      setStatus('invalid', `No ${side === 'BUY' ? 'ask' : 'bid'} in the book to ${side === 'BUY' ? 'buy' : 'sell'} at: enter a limit and Stage.`);
      return;
    }
    stageAt({ symbol, side, price });
  }

  applyType();
  setStatus('idle', '');
  window.hud.ticket = { stage, patch };
}
