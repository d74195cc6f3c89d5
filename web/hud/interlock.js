// The biometric interlock as the trader sees it: Execute stays disabled, with the reason, until
// the trader arms with a passkey (a server-side grant with the trader's own limits and an expiry);
// a countdown to that expiry (the server's clock); an order beyond the grant asks for its own
// ceremony, whose challenge the floor derived from that very order (its hash shown next to
// Execute). The page only reflects the interlock: the server refuses whatever it is not armed for.
import * as store from './store.js';
import { gql } from './gql.js';
import { el, byId } from './dom.js';
import { assertPasskey, ceremonyMessage } from './passkey.js';
import { serverNow, mmss, EXPIRY_MARGIN_MS } from './clock.js';

// Refusals after which the staged order can never be executed: Execute has nothing to send.
const SPENT = new Set(['desk.already_executed', 'desk.staged_in_another_session', 'desk.staged_expired', 'desk.staged_discarded']);

const GRANT_FIELDS = 'expiresAt symbols maxQuantity maxNotional credentialId';
const ME_GRANT = `query { me { stepUpEveryOrder grant { ${GRANT_FIELDS} } } }`;
const BEGIN = `mutation($l: ArmingLimitsInput) { beginArming(limits: $l) { __typename
  ... on CeremonyChallenge { challengeId optionsJson }
  ... on WebAuthnRefused { reason detail } } }`;
const FINISH = `mutation($c: String!, $cred: String!) { finishArming(challengeId: $c, credential: $cred) {
  __typename ... on Grant { ${GRANT_FIELDS} } ... on WebAuthnRefused { reason detail } } }`;
const DISARM = 'mutation { disarm { disarmed } }';
const EXECUTE = `mutation($s: String!, $a: StepUpAssertionInput) { executeOrder(stagedId: $s, assertion: $a) {
  __typename
  ... on Executed { stagedId commandId state ceremony }
  ... on NotArmed { reason detail }
  ... on GrantExceeded { reason detail }
  ... on StepUpRequired { reason detail challengeId optionsJson expiresAt orderHash orderHashPrefix }
  ... on RiskRejected { commandId reason detail }
  ... on BreakerHalted { commandId reason detail }
  ... on Invalid { reason detail field } } }`;

const REASONS = {
  'signed-out': 'Signed out: sign in with your passkey.',
  'not-armed': 'Disarmed: Arm with your passkey to enable Execute.',
  expired: `Grant expired (Execute stops ${EXPIRY_MARGIN_MS / 1000} s before the server's expiry): Arm again to enable it.`,
  'nothing-staged': 'Nothing staged: Stage an order (ticket, ladder click, B/S).',
  halted: 'Breaker HALTED: no new orders until it is re-armed.',
  stale: 'Book stale: Execute waits for the feed to resync.',
  'step-up': 'Confirm this order on your authenticator…',
  busy: 'Sending…',
};
const WHOLE = /^[1-9]\d{0,8}$/;
const DECIMAL = /^\d+(\.\d+)?$/;
const SYMBOL = /^[A-Z][A-Z0-9.]{0,11}$/;

// Bound what the page keeps of the answers (a test hook, read for the newest few).
const MAX_RESULTS = 100;

// Milliseconds the grant has left by the server's clock (sub-second: see clock.js).
function remaining(grant) {
  return grant ? Date.parse(grant.expiresAt) - serverNow() : 0;
}

// The grant as the server gave it, live until EXPIRY_MARGIN_MS before its expiry.
function live(grant) {
  return Boolean(grant) && remaining(grant) > EXPIRY_MARGIN_MS;
}

// gql() notes every answer's Date header, so this also re-measures the server's clock.
async function fetchGrant() {
  return (await gql(ME_GRANT)).me;
}

function termsOf(s) {
  const price = s.limitPrice ? ` ${s.limitPrice}` : '';
  const stop = s.stopPrice ? ` stop ${s.stopPrice}` : '';
  return `${s.side} ${s.quantity} ${s.symbol} ${s.orderType}${price}${stop}`;
}

function armingDialog() {
  const input = (id, attrs) => el('input', { id, autocomplete: 'off', spellcheck: 'false', ...attrs });
  return el('dialog', { id: 'arming-dialog', 'aria-labelledby': 'arming-title' },
    el('form', { method: 'dialog', novalidate: true },
      el('h2', { id: 'arming-title' }, 'Arm Execute'),
      el('p', { class: 'dim' }, 'Your authenticator (fingerprint, face or PIN) confirms a time-limited grant with these limits. Beyond them each order asks again.'),
      el('label', { class: 'field' }, el('span', { class: 'label' }, 'Instruments'), input('arm-symbols', { placeholder: 'AAPL, MSFT (empty: any)' })),
      el('label', { class: 'field' }, el('span', { class: 'label' }, 'Max quantity'), input('arm-max-qty', { inputmode: 'numeric', placeholder: 'shares per order (empty: no limit)' })),
      el('label', { class: 'field' }, el('span', { class: 'label' }, 'Max notional'), input('arm-max-notional', { inputmode: 'decimal', placeholder: 'USD per order (empty: no limit)' })),
      el('div', { id: 'arm-error', role: 'alert' }),
      el('div', { class: 'actions' },
        el('button', { id: 'arm-cancel', type: 'button' }, 'Cancel'),
        el('button', { id: 'arm-confirm', type: 'submit', class: 'primary' }, 'Arm with passkey')),
    ));
}

// The limits typed in the dialog as ArmingLimitsInput, or the first problem with them.
function readLimits() {
  const symbolsText = byId('arm-symbols').value.trim().toUpperCase();
  const qty = byId('arm-max-qty').value.trim();
  const notional = byId('arm-max-notional').value.trim().replace(/,/g, '');
  const symbols = symbolsText ? symbolsText.split(/[\s,]+/).filter(Boolean) : null;
  if (symbols && !symbols.every((s) => SYMBOL.test(s))) return { problem: 'Instruments: symbols separated by commas, like AAPL, MSFT.' };
  if (qty && !WHOLE.test(qty)) return { problem: 'Max quantity: a whole number of shares above 0, or empty for no limit.' };
  if (notional && !(DECIMAL.test(notional) && /[1-9]/.test(notional))) return { problem: 'Max notional: an amount in USD like 50000, or empty for no limit.' };
  return { limits: { symbols, maxQuantity: qty ? Number(qty) : null, maxNotional: notional || null } };
}

export function mountInterlock(root) {
  const armButton = byId('arm');
  const disarmButton = byId('disarm');
  const countdown = byId('grant-countdown');
  const execute = byId('execute');
  const reasonLine = byId('execute-reason');
  const hash = byId('order-hash');
  const status = byId('interlock-status');
  const dialog = armingDialog();
  document.body.append(dialog);
  // What Execute sends, in words next to its hash: the ticket may since say something else.
  const terms = el('span', { id: 'order-terms', title: 'The staged order Execute sends' });
  hash.after(terms);

  let busy = false;
  let stepUp = null; // the StepUpRequired being answered
  let everyOrder = Boolean(store.latest('me') && store.latest('me').stepUpEveryOrder);
  let hadGrant = false;
  const results = [];

  function show(typename, text, reason = null) {
    results.push(typename);
    if (results.length > MAX_RESULTS) results.splice(0, results.length - MAX_RESULTS);
    status.dataset.state = typename;
    if (reason) status.dataset.reason = reason;
    else delete status.dataset.reason;
    status.textContent = text;
  }

  function reason() {
    if (!store.latest('me')) return 'signed-out';
    if (busy) return stepUp ? 'step-up' : 'busy';
    const breaker = store.latest('breaker');
    if (breaker && breaker.state === 'HALTED') return 'halted';
    if (!live(store.latest('grant'))) return 'not-armed';
    const staged = store.latest('staged');
    if (!staged) return 'nothing-staged';
    // The staged order's own book must be live: no feed for its symbol counts as stale.
    const feed = store.latest('feed');
    if (!feed || !feed.ok || feed.symbol !== staged.symbol) return 'stale';
    return null;
  }

  function render() {
    const why = reason();
    execute.disabled = why !== null;
    execute.dataset.reason = why || '';
    let text = why ? REASONS[why] : 'Armed: Execute sends the staged order.';
    if (why === 'not-armed' && hadGrant) text = REASONS.expired;
    if (why === 'step-up' && stepUp) text = `Confirm order ${stepUp.orderHashPrefix} on your authenticator: ${stepUp.detail}`;
    if (why === 'stale') {
      const feed = store.latest('feed');
      const staged = store.latest('staged');
      text = feed && feed.symbol === staged.symbol
        ? `Book out of sync (${feed.reason || 'stale'}): Execute waits for the resync.`
        : `No live book for ${staged.symbol}: show it on the ladder (the ticket's symbol) to Execute.`;
    }
    if (!why && everyOrder) text = 'Armed: every order asks your authenticator (your setting).';
    reasonLine.textContent = text;
    reasonLine.dataset.reason = why || 'ready';
    const staged = store.latest('staged');
    terms.textContent = staged ? termsOf(staged) : '';
    hash.textContent = stepUp ? stepUp.orderHashPrefix : staged ? staged.orderHashPrefix : '';
    hash.title = stepUp ? `The authenticator signs order ${stepUp.orderHash}` : staged ? `Order hash ${staged.orderHash}` : '';
    hash.dataset.stepUp = stepUp ? 'true' : 'false';
  }

  // --- the grant and its countdown ------------------------------------------------------------
  let ticker = null;
  let stopAt = null; // fires at the moment Execute must stop, not at the next tick
  let rechecking = false;

  function tick() {
    const grant = store.latest('grant');
    if (!grant) return;
    const left = remaining(grant);
    countdown.textContent = mmss(left);
    countdown.dataset.urgent = left < 60_000 ? 'true' : 'false';
    if (left <= EXPIRY_MARGIN_MS) expired(grant);
  }

  // At expiry Execute disables at once; the server is asked what it holds now (a grant armed in
  // another tab, say); one it still calls live past our expiry is not trusted here.
  async function expired(grant) {
    store.publish('grant', null);
    if (rechecking) return;
    rechecking = true;
    try {
      const me = await fetchGrant();
      if (me.grant && me.grant.expiresAt !== grant.expiresAt && live(me.grant)) store.publish('grant', me.grant);
    } catch (err) {
      console.warn('grant re-check failed', err);
    } finally {
      rechecking = false;
    }
  }

  function onGrant(grant) {
    const armed = live(grant);
    if (armed) hadGrant = true;
    countdown.hidden = !armed;
    disarmButton.hidden = !armed;
    root.dataset.armed = armed ? 'true' : 'false';
    armButton.textContent = armed ? 'Arm again' : 'Arm';
    clearInterval(ticker);
    clearTimeout(stopAt);
    ticker = null;
    if (armed) {
      const limits = [
        grant.symbols ? grant.symbols.join(', ') : 'any instrument',
        grant.maxQuantity ? `≤ ${grant.maxQuantity} sh` : 'any quantity',
        grant.maxNotional ? `≤ ${grant.maxNotional} USD` : 'any notional',
      ];
      countdown.title = `Armed: ${limits.join(' · ')}; until ${new Date(grant.expiresAt).toLocaleTimeString()}`;
      tick();
      ticker = setInterval(tick, 250);
      stopAt = setTimeout(tick, remaining(grant) - EXPIRY_MARGIN_MS);
    }
    render();
  }

  // --- arming ---------------------------------------------------------------------------------
  function openArming() {
    const grant = store.latest('grant');
    const symbol = store.latest('symbol');
    byId('arm-symbols').value = grant && grant.symbols ? grant.symbols.join(', ') : symbol || '';
    byId('arm-error').textContent = '';
    byId('arm-confirm').disabled = false;
    dialog.showModal();
    byId('arm-max-qty').focus();
  }

  async function arm(event) {
    event.preventDefault();
    const { limits, problem } = readLimits();
    const error = byId('arm-error');
    if (problem) {
      error.textContent = problem;
      return;
    }
    const confirm = byId('arm-confirm');
    confirm.disabled = true;
    error.textContent = 'Waiting for your authenticator…';
    try {
      const begun = (await gql(BEGIN, { l: limits })).beginArming;
      if (begun.__typename !== 'CeremonyChallenge') return refused(begun.reason, begun.detail);
      let credential;
      try {
        credential = await assertPasskey(begun.optionsJson);
      } catch (err) {
        return refused(`browser.${(err && err.name) || 'error'}`, ceremonyMessage(err));
      }
      const done = (await gql(FINISH, { c: begun.challengeId, cred: credential })).finishArming;
      if (done.__typename !== 'Grant') return refused(done.reason, done.detail);
      const { __typename, ...grant } = done;
      show('Grant', `Armed until ${new Date(grant.expiresAt).toLocaleTimeString()}.`);
      error.textContent = '';
      dialog.close('armed');
      store.publish('grant', grant);
      return undefined;
    } catch (err) {
      error.textContent = `Not armed: ${err.message}`;
      show('error', `Not armed: ${err.message}`);
      return undefined;
    } finally {
      confirm.disabled = false;
    }
  }

  function refused(reasonCode, detail) {
    const text = `Not armed: ${detail} (${reasonCode})`;
    byId('arm-error').textContent = text;
    show('WebAuthnRefused', text, reasonCode);
  }

  async function disarm() {
    try {
      await gql(DISARM);
      show('Disarmed', 'Disarmed: Execute is refused until you arm again.');
      hadGrant = false;
      store.publish('grant', null);
    } catch (err) {
      show('error', `Disarm failed: ${err.message}`);
    }
  }

  // --- Execute ---------------------------------------------------------------------------------
  async function send(stagedId, assertion) {
    return (await gql(EXECUTE, { s: stagedId, a: assertion })).executeOrder;
  }

  async function executeStaged() {
    // No other client-side check: whatever the button's state (a forced click, a page someone
    // edited) the server decides, and its answer is shown.
    const staged = store.latest('staged');
    if (!staged || busy) return;
    busy = true;
    render();
    try {
      let result = await send(staged.stagedId, null);
      if (result.__typename === 'StepUpRequired') {
        stepUp = result;
        show('StepUpRequired', `Step-up: confirm order ${result.orderHashPrefix} on your authenticator (${result.detail}).`, result.reason);
        render();
        let credential;
        try {
          credential = await assertPasskey(result.optionsJson);
        } catch (err) {
          show('WebAuthnRefused', `Step-up not confirmed: ${ceremonyMessage(err)} Order ${result.orderHashPrefix} was not sent.`, `browser.${(err && err.name) || 'error'}`);
          return;
        }
        result = await send(staged.stagedId, { challengeId: result.challengeId, credential });
      }
      settle(staged, result);
    } catch (err) {
      show('error', `Execute failed: ${err.message}. Check the blotter before sending again.`);
    } finally {
      busy = false;
      stepUp = null;
      render();
    }
  }

  function settle(staged, result) {
    const t = result.__typename;
    switch (t) {
      case 'Executed':
        show(t, `Executed ${staged.side} ${staged.quantity} ${staged.symbol}: ${result.state} (${result.ceremony}) · ${result.commandId}`);
        store.publish('executed', { stagedId: staged.stagedId, commandId: result.commandId, state: result.state, staged });
        store.publish('staged', null);
        break;
      case 'RiskRejected':
      case 'BreakerHalted':
        // Refused and ledgered: the staged order is spent; the blotter shows it rejected.
        show(t, `${t === 'RiskRejected' ? 'Risk rejected' : 'Breaker halted'}: ${result.detail} (${result.reason})`, result.reason);
        store.publish('executed', { stagedId: staged.stagedId, commandId: result.commandId, state: 'REJECTED', reason: result.reason, staged });
        store.publish('staged', null);
        break;
      case 'NotArmed':
        show(t, `Not armed: ${result.detail}`, result.reason);
        store.publish('grant', null);
        break;
      case 'GrantExceeded':
        show(t, `Outside your grant: ${result.detail} — arm again including it.`, result.reason);
        break;
      case 'StepUpRequired':
        show(t, `The floor asked for another step-up (${result.detail}): Execute again.`, result.reason);
        break;
      default:
        show(t, `${result.detail} (${result.reason})`, result.reason);
        if (SPENT.has(result.reason)) store.publish('staged', null);
    }
  }

  armButton.addEventListener('click', openArming);
  disarmButton.addEventListener('click', disarm);
  byId('arm-cancel').addEventListener('click', () => dialog.close('cancel'));
  dialog.querySelector('form').addEventListener('submit', arm);
  execute.addEventListener('click', executeStaged);

  store.on('grant', onGrant);
  store.on('me', (me) => {
    everyOrder = Boolean(me && me.stepUpEveryOrder);
    render();
  });
  for (const topic of ['staged', 'breaker', 'feed']) store.on(topic, render);
  // Once at start: the server's clock (Date header) and its view of the grant.
  fetchGrant()
    .then((me) => {
      everyOrder = me.stepUpEveryOrder;
      store.publish('grant', me.grant);
    })
    .catch((err) => console.warn('grant check failed', err));
  window.hud.interlock = { results: () => [...results], openArming, remaining: () => remaining(store.latest('grant')) };
  render();
}
