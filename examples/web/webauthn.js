// The demo's only script: WebAuthn ceremonies through the server's JSON endpoints.
// Options arrive as the JSON of PublicKeyCredentialCreation/RequestOptions; responses go back
// as PublicKeyCredential.toJSON(). Every request carries the page's CSRF token.
"use strict";

const csrf = () => document.querySelector('meta[name="csrf"]').content;

function status(message) {
  const el = document.getElementById("webauthn-status");
  if (el) el.textContent = message;
}

async function post(url, body) {
  const response = await fetch(url, {
    method: "POST",
    headers: { "Content-Type": "application/json", "X-CSRF-Token": csrf() },
    body: JSON.stringify(body || {}),
  });
  let data = {};
  try { data = await response.json(); } catch (_) { /* not JSON */ }
  if (!response.ok || data.error) throw new Error(data.error || "The request failed.");
  return data;
}

function friendly(error) {
  if (error && error.name === "NotAllowedError") return "The request was cancelled or timed out.";
  if (error && error.name === "InvalidStateError") return "This authenticator is already registered.";
  return (error && error.message) || "Something went wrong.";
}

let conditional = null; // the pending autofill request, if any

async function register(kind) {
  status("Follow your browser's prompt…");
  const { options, ceremony } = await post("/settings/webauthn/start", { kind });
  const credential = await navigator.credentials.create({
    publicKey: PublicKeyCredential.parseCreationOptionsFromJSON(options.publicKey),
  });
  const nameInput = document.getElementById("webauthn-name");
  const result = await post("/settings/webauthn/finish", {
    ceremony,
    response: credential.toJSON(),
    name: nameInput && nameInput.value ? nameInput.value : null,
  });
  location.href = result.redirect;
}

async function secondFactor() {
  status("Touch your security key or confirm on your device…");
  const { options, ceremony } = await post("/mfa/webauthn/start");
  const credential = await navigator.credentials.get({
    publicKey: PublicKeyCredential.parseRequestOptionsFromJSON(options.publicKey),
  });
  const result = await post("/mfa/webauthn/finish", { ceremony, response: credential.toJSON() });
  location.href = result.redirect;
}

async function passwordless(autofill) {
  const { options, ceremony } = await post("/login/passkey/start", { conditional: autofill });
  const request = { publicKey: PublicKeyCredential.parseRequestOptionsFromJSON(options.publicKey) };
  if (autofill) {
    conditional = new AbortController();
    request.mediation = "conditional";
    request.signal = conditional.signal;
  }
  const credential = await navigator.credentials.get(request);
  const result = await post("/login/passkey/finish", { ceremony, response: credential.toJSON() });
  location.href = result.redirect;
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

document.addEventListener("DOMContentLoaded", async () => {
  for (const button of document.querySelectorAll("[data-webauthn]")) {
    button.addEventListener("click", () => {
      actions[button.dataset.webauthn]().catch((e) => status(friendly(e)));
    });
  }
  // Passkey autofill on the username field. Its state is kept on the page (pending, settled,
  // unavailable) so that tests can wait for the background request instead of guessing.
  const autofill = (state) => { document.documentElement.dataset.autofill = state; };
  if (!document.getElementById("username")) return;
  if (window.PublicKeyCredential && PublicKeyCredential.isConditionalMediationAvailable &&
      await PublicKeyCredential.isConditionalMediationAvailable()) {
    autofill("pending");
    passwordless(true).catch((e) => {
      if (e && e.name !== "AbortError") status(friendly(e));
    }).finally(() => autofill("settled"));
  } else {
    autofill("unavailable");
  }
});
