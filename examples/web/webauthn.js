// The demo's only script: WebAuthn ceremonies through the server's JSON endpoints.
// Options arrive as the JSON of PublicKeyCredentialCreation/RequestOptions; responses go back
// as PublicKeyCredential.toJSON(). Every request carries the page's CSRF token.
//
// What a person started reports in the page's error box (the same one the server's pages use);
// the background passkey request behind autofill never does: it fails silently.
"use strict";

const csrf = () => document.querySelector('meta[name="csrf"]').content;

/// Progress ("Follow your browser's prompt…") in the status line.
function progress(message) {
  const el = document.getElementById("webauthn-status");
  if (el) el.textContent = message;
}

/// A failure, in the error box; an older notice ("Your key is registered.") is taken away, so
/// that it does not read as the answer to this request.
function showError(message) {
  progress("");
  const notice = document.getElementById("notice");
  if (notice) notice.remove();
  let box = document.getElementById("error");
  if (!box) {
    box = document.createElement("p");
    box.id = "error";
    box.className = "error";
    box.setAttribute("role", "alert");
    const messages = document.getElementById("messages");
    if (messages) messages.prepend(box);
    else document.querySelector("main").prepend(box);
  }
  box.textContent = message;
}

/// A refusal the server explained: its message is shown as it is.
class ServerError extends Error {}

async function post(url, body) {
  let response;
  try {
    response = await fetch(url, {
      method: "POST",
      headers: { "Content-Type": "application/json", "X-CSRF-Token": csrf() },
      body: JSON.stringify(body || {}),
    });
  } catch (_) {
    throw new ServerError("The server could not be reached. Check your connection and try again.");
  }
  let data = {};
  try { data = await response.json(); } catch (_) { /* not JSON */ }
  if (data.signals) await sendSignals(data.signals);
  if (!response.ok || data.error) {
    throw new ServerError(data.error || "The server could not handle the request. Reload the page and try again.");
  }
  return data;
}

/// WebAuthn Level 3 signals the server asked for (`[{kind, payload}]`), sent where the browser
/// has them; each call is recorded on the page (`data-signals`) for developers and tests.
async function sendSignals(signals) {
  const calls = { unknownCredential: "signalUnknownCredential",
    allAcceptedCredentials: "signalAllAcceptedCredentials", currentUserDetails: "signalCurrentUserDetails" };
  const done = [];
  for (const { kind, payload } of signals) {
    const call = calls[kind];
    if (!call || !window.PublicKeyCredential || typeof PublicKeyCredential[call] !== "function") {
      done.push(kind + ":unsupported");
      continue;
    }
    try {
      await PublicKeyCredential[call](payload);
      done.push(kind + ":sent");
    } catch (e) {
      done.push(kind + ":" + ((e && e.name) || "failed"));
    }
  }
  const root = document.documentElement;
  root.dataset.signals = [root.dataset.signals, ...done].filter(Boolean).join(" ");
}

const ALGORITHMS = { "-7": "ES256", "-8": "EdDSA", "-35": "ES384", "-257": "RS256" };

/// What to say when the browser's ceremony failed, per ceremony: what happened, what to do.
/// `NotAllowedError` deliberately covers cancel, timeout and "no credential here" alike (the
/// browser will not tell a site which), so the message names all three.
async function explain(error, ceremony) {
  if (error instanceof ServerError) return error.message;
  const name = error && error.name;
  if (name === "InvalidStateError") {
    return "This authenticator is already registered to your account (it is in the list above). Nothing was changed.";
  }
  if (name === "NotSupportedError") {
    return "Your authenticator supports none of the key types this site accepts. Trying again will not help: use another security key or passkey.";
  }
  if (name === "SecurityError") {
    return "The browser refused: this page's address is not one this site's passkeys are registered for.";
  }
  if (name === "NotAllowedError") {
    switch (ceremony) {
      case "register-passkey": {
        const verifying = window.PublicKeyCredential &&
          PublicKeyCredential.isUserVerifyingPlatformAuthenticatorAvailable &&
          await PublicKeyCredential.isUserVerifyingPlatformAuthenticatorAvailable();
        if (!verifying) {
          return "No passkey was created: this device offers no authenticator that can verify you (a screen lock, PIN or fingerprint), or the prompt was closed. Use a security key with a PIN, or add a security key instead.";
        }
        return "No passkey was created: the prompt was closed or timed out. Try again when you are ready to confirm with your screen lock, PIN or fingerprint.";
      }
      case "register-security-key":
        return "No security key was registered: the prompt was closed or timed out before the key was touched. Try again and touch your key when it blinks.";
      case "second-factor":
        return "No security key or passkey answered: the prompt was closed or timed out, or none of your registered keys is on this device. Try again, or use another method on this page.";
      default:
        return "No passkey was used: the prompt was closed or timed out, or this device has no passkey for this site. Try again, or sign in with your password.";
    }
  }
  return "Something went wrong in the browser. Reload the page and try again.";
}

let conditional = null; // the pending autofill request, if any

async function register(kind) {
  progress("Follow your browser's prompt…");
  const started = await post("/settings/webauthn/start", { kind });
  // A fresh second factor first (the server says where), or enroll something else first.
  if (started.redirect) {
    location.href = started.redirect;
    return;
  }
  const { options, ceremony } = started;
  const offered = options.publicKey.pubKeyCredParams.map((p) => p.alg);
  const credential = await navigator.credentials.create({
    publicKey: PublicKeyCredential.parseCreationOptionsFromJSON(options.publicKey),
  });
  // The browser can tell a key of a type this site never offered: no point sending it.
  const alg = credential.response.getPublicKeyAlgorithm ? credential.response.getPublicKeyAlgorithm() : null;
  if (alg !== null && !offered.includes(alg)) {
    throw new ServerError(
      `Your authenticator made a key of a type this site does not accept (${ALGORITHMS[alg] || "algorithm " + alg}). ` +
      "Trying again will not help: use another security key or passkey.");
  }
  const nameInput = document.getElementById("webauthn-name");
  const result = await post("/settings/webauthn/finish", {
    ceremony,
    response: credential.toJSON(),
    name: nameInput && nameInput.value ? nameInput.value : null,
  });
  location.href = result.redirect;
}

/** Whether "Remember this browser" is ticked on the second-factor page. */
function rememberTicked() {
  const box = document.getElementById("remember-browser");
  return !!(box && box.checked);
}

// The code forms carry the checkbox's state in a hidden field (one checkbox for every method).
document.addEventListener("submit", (event) => {
  const field = event.target.querySelector && event.target.querySelector(".remember-field");
  if (field) field.value = rememberTicked() ? "1" : "";
});

async function secondFactor() {
  progress("Touch your security key or confirm on your device…");
  const { options, ceremony } = await post("/mfa/webauthn/start");
  const credential = await navigator.credentials.get({
    publicKey: PublicKeyCredential.parseRequestOptionsFromJSON(options.publicKey),
  });
  const result = await post("/mfa/webauthn/finish", { ceremony, response: credential.toJSON(), remember: rememberTicked() });
  location.href = result.redirect;
}

async function passwordless(autofill) {
  if (!autofill) progress("Choose a passkey in your browser's prompt…");
  const { options, ceremony } = await post("/login/passkey/start", { conditional: autofill });
  const request = { publicKey: PublicKeyCredential.parseRequestOptionsFromJSON(options.publicKey) };
  if (autofill) {
    conditional = new AbortController();
    request.mediation = "conditional";
    request.signal = conditional.signal;
  }
  const credential = await navigator.credentials.get(request);
  // From here on the person has chosen a passkey (from autofill too): a refusal is news.
  try {
    const result = await post("/login/passkey/finish", { ceremony, response: credential.toJSON() });
    location.href = result.redirect;
  } catch (e) {
    if (!autofill) throw e;
    showError(await explain(e, "passwordless"));
  }
}

const actions = {
  "register-security-key": () => register("security_key"),
  "register-passkey": () => register("passkey"),
  "second-factor": secondFactor,
  passwordless: () => {
    if (conditional) conditional.abort();
    return passwordless(false);
  },
};

// ----- The encrypted note: a key from a passkey's PRF output, never sent anywhere -----------

function b64uToBytes(text) {
  const b64 = text.replace(/-/g, "+").replace(/_/g, "/") + "===".slice((text.length + 3) % 4);
  return Uint8Array.from(atob(b64), (c) => c.charCodeAt(0));
}

function bytesToB64u(bytes) {
  let text = "";
  for (const b of bytes) text += String.fromCharCode(b);
  return btoa(text).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
}

/// The 32 bytes one of the user's passkeys derives for `salt` (the `prf` extension). The
/// server sends the options with the salt; the output stays in this page.
async function derivePrf(salt) {
  const { options } = await post("/settings/note/start", { salt });
  const json = JSON.parse(JSON.stringify(options.publicKey));
  const prf = json.extensions && json.extensions.prf;
  // The prf input's JSON form is converted here, in case the browser's parser does not know it.
  if (json.extensions) delete json.extensions.prf;
  const publicKey = PublicKeyCredential.parseRequestOptionsFromJSON(json);
  publicKey.extensions = Object.assign({}, publicKey.extensions, {
    prf: { eval: { first: b64uToBytes(prf.eval.first) } },
  });
  const credential = await navigator.credentials.get({ publicKey });
  const results = credential.getClientExtensionResults().prf;
  if (!results || !results.results || !results.results.first) {
    throw new ServerError("This passkey cannot derive keys (it has no PRF support).");
  }
  return new Uint8Array(results.results.first);
}
// For developers (and the browser test): the output for a salt, as base64url.
window.prfOutput = async (salt) => bytesToB64u(await derivePrf(salt));

/// The note's AES-GCM key: HKDF over the PRF output.
async function noteKey() {
  const secret = await derivePrf("note-v1");
  const base = await crypto.subtle.importKey("raw", secret, "HKDF", false, ["deriveKey"]);
  return crypto.subtle.deriveKey(
    { name: "HKDF", hash: "SHA-256", salt: new Uint8Array(), info: new TextEncoder().encode("multifactor demo note") },
    base, { name: "AES-GCM", length: 256 }, false, ["encrypt", "decrypt"]);
}

async function saveNote() {
  const status = document.getElementById("note-status");
  status.textContent = "Confirm with your passkey…";
  const key = await noteKey();
  const iv = crypto.getRandomValues(new Uint8Array(12));
  const text = new TextEncoder().encode(document.getElementById("note-text").value);
  const sealed = new Uint8Array(await crypto.subtle.encrypt({ name: "AES-GCM", iv }, key, text));
  const blob = new Uint8Array(iv.length + sealed.length);
  blob.set(iv);
  blob.set(sealed, iv.length);
  await post("/settings/note/save", { ciphertext: bytesToB64u(blob) });
  status.textContent = "Saved, encrypted.";
}

async function openNote() {
  const status = document.getElementById("note-status");
  const { ciphertext } = await post("/settings/note/load");
  if (!ciphertext) {
    status.textContent = "No note saved yet.";
    return;
  }
  status.textContent = "Confirm with your passkey…";
  const key = await noteKey();
  const blob = b64uToBytes(ciphertext);
  let plain;
  try {
    plain = await crypto.subtle.decrypt({ name: "AES-GCM", iv: blob.slice(0, 12) }, key, blob.slice(12));
  } catch (_) {
    throw new ServerError("This passkey's key does not open the note (it was saved with another passkey).");
  }
  document.getElementById("note-text").value = new TextDecoder().decode(plain);
  status.textContent = "Opened.";
}

document.addEventListener("DOMContentLoaded", async () => {
  for (const [id, action] of [["note-save", saveNote], ["note-open", openNote]]) {
    const button = document.getElementById(id);
    if (button) {
      button.addEventListener("click", () => action().catch((e) => {
        if (e && e.name === "AbortError") return;
        showError(e instanceof ServerError ? e.message : "That did not work: " + ((e && e.message) || e));
      }));
    }
  }
  // Signals the server left for this page (after a deletion or a rename).
  const pending = document.getElementById("webauthn-signals");
  if (pending) {
    try { await sendSignals(JSON.parse(pending.textContent)); } catch (_) { /* malformed: ignore */ }
    document.documentElement.dataset.signalsDone = "1";
  }
  // Keeping new backup codes: copy them, or print the page (the download is a plain link).
  for (const button of document.querySelectorAll("[data-codes-action]")) {
    button.addEventListener("click", async () => {
      const status = document.getElementById("codes-status");
      if (button.dataset.codesAction === "print") {
        window.print();
        return;
      }
      const codes = Array.from(document.querySelectorAll("#backup-codes code")).map((c) => c.textContent);
      try {
        await navigator.clipboard.writeText(codes.join("\n") + "\n");
        status.textContent = "Copied.";
      } catch (_) {
        status.textContent = "This browser did not allow copying: download the codes, or print them.";
      }
    });
  }
  for (const button of document.querySelectorAll("[data-webauthn]")) {
    const ceremony = button.dataset.webauthn;
    button.addEventListener("click", () => {
      actions[ceremony]().catch(async (e) => {
        if (e && e.name === "AbortError") return;
        showError(await explain(e, ceremony));
      });
    });
  }
  // Passkey autofill on the username field. Its state is kept on the page (pending, settled,
  // unavailable) so that tests can wait for the background request instead of guessing.
  const autofill = (state) => { document.documentElement.dataset.autofill = state; };
  if (!document.getElementById("username")) return;
  if (window.PublicKeyCredential && PublicKeyCredential.isConditionalMediationAvailable &&
      await PublicKeyCredential.isConditionalMediationAvailable()) {
    autofill("pending");
    // Nobody asked for this request: its failure (no passkey here, aborted by the button) is
    // not news to the person, so it is only noted for developers.
    passwordless(true).catch((e) => {
      document.documentElement.dataset.autofillError = (e && e.name) || "Error";
    }).finally(() => autofill("settled"));
  } else {
    autofill("unavailable");
  }
});
