// The ticket's sizing line: the Kelly-sized quantity for the trader's claimed win probability and
// the Max Trade Size, both from the floor's own sizer (sizingSuggestion), never computed here.
import { gql } from './gql.js';

const QUERY = `query($t: OrderTicketInput!, $p: Decimal!) { sizingSuggestion(ticket: $t, winProbability: $p) {
  quantity maxTradeSize binding kellyFraction netLiquidation detail } }`;
// Without a claimed edge the Max Trade Size is still worth showing: a coin flip sizes nothing,
// so asking at 0.5 gives the caps alone.
const NO_EDGE = '0.5';
const PROBABILITY = /^(0?\.\d*[1-9]\d*)$/;
const WAIT_MS = 250;

function probability(text) {
  const t = text.trim();
  if (!t) return null;
  return PROBABILITY.test(t) ? (t.startsWith('.') ? `0${t}` : t) : undefined;
}

export function sizingSuggestion({ button, max, edge, error, ticket, use }) {
  let timer = null;
  let asked = 0;
  let unavailable = false;

  function show(state, kelly, maxText, title = '') {
    button.dataset.state = state;
    button.textContent = kelly;
    max.textContent = maxText;
    button.title = title;
    max.title = title;
  }

  async function ask() {
    const p = probability(edge.value);
    const t = ticket();
    if (p === undefined) {
      button.disabled = true;
      delete button.dataset.quantity;
      show('invalid', 'Kelly —', max.textContent, 'Win probability: a decimal between 0 and 1, like 0.55');
      edge.setAttribute('aria-invalid', 'true');
      if (error) error.textContent = 'a probability between 0 and 1, like 0.55';
      return;
    }
    edge.removeAttribute('aria-invalid');
    if (error) error.textContent = '';
    if (!t) return;
    const mine = ++asked;
    try {
      const s = (await gql(QUERY, { t, p: p || NO_EDGE })).sizingSuggestion;
      if (mine !== asked) return; // a newer question is on its way
      const maxText = `Max ${s.maxTradeSize}`;
      if (p) {
        button.disabled = s.quantity <= 0;
        button.dataset.quantity = String(s.quantity);
        show('ready', `Kelly ${s.quantity}`, maxText, `${s.detail} (binding: ${s.binding}, Kelly fraction ${s.kellyFraction})`);
      } else {
        button.disabled = true;
        delete button.dataset.quantity;
        show('no-edge', 'Kelly —', maxText, `Enter your win probability for a Kelly size. ${s.detail}`);
      }
    } catch (err) {
      if (mine !== asked) return;
      button.disabled = true;
      delete button.dataset.quantity;
      // An API without the sizer answers with a schema error: say so once, stop asking.
      if ((err.messages || []).some((m) => /sizingSuggestion/.test(m) && /Cannot query field/.test(m))) {
        unavailable = true;
        show('unavailable', 'Kelly unavailable', 'Max unavailable', 'This floor has no sizing suggestion yet');
      } else {
        show('error', 'Kelly —', 'Max —', `No suggestion: ${err.message}`);
      }
    }
  }

  button.addEventListener('click', () => {
    if (button.dataset.quantity) use(Number(button.dataset.quantity));
  });

  return {
    refresh() {
      if (unavailable) return;
      clearTimeout(timer);
      timer = setTimeout(ask, WAIT_MS);
    },
  };
}
