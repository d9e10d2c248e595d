"""Admin: knowledge bases (upload, ingestion progress, documents and failures), model versions
(evaluation scores, promote, roll back, start a fine-tuning run), access (which knowledge bases
customers see, which ones each operator sees, the audit log) and webhooks (add, test, remove, send
failed deliveries again). Needs an admin login.

Every change made here is done as the logged-in admin's caller and lands in the audit log.
"""

from __future__ import annotations

import importlib.util
from datetime import timedelta

import pandas as pd
import streamlit as st

from assistant.access import Caller, audit, set_visibility
from assistant.webhooks import EVENTS, manage
from ui import admin_ops as ops
from ui.auth import UserError, list_users, set_knowledge_bases
from ui.common import check_session, current_account, friendly_errors, require_role, settings
from ui.dashboard_data import csv_bytes
from ui.safe_text import literal

RUN_KEY = "admin_finetune_run"


def _upload() -> None:
    from ingest.loaders import SUPPORTED_SUFFIXES
    from ingest.locking import IngestionLockedError

    st.subheader("Upload documents")
    current = settings()
    existing = list(ops.knowledge_bases(current)["name"])
    left, right = st.columns(2)
    chosen = left.selectbox("Knowledge base", existing + ["➕ new knowledge base"], key="admin_kb_choice")
    new_name = right.text_input("New knowledge base name", key="admin_kb_new",
                                disabled=chosen != "➕ new knowledge base")
    kb = new_name if chosen == "➕ new knowledge base" else chosen
    files = st.file_uploader("Files", type=sorted(s.lstrip(".") for s in SUPPORTED_SUFFIXES),
                             accept_multiple_files=True, key="admin_files")
    if not st.button("Ingest", key="admin_ingest", disabled=not files or not kb.strip()):
        return
    try:
        paths = ops.save_uploads(current, kb, [(f.name, f.getvalue()) for f in files])
    except ValueError as error:
        st.error(str(error))
        return
    progress = st.progress(0.0, text=f"Ingesting {len(paths)} file(s) into {kb}…")
    with st.status(f"Ingesting into {kb}", expanded=True) as status:
        def report(index: int, result: ops.FileResult) -> None:
            progress.progress((index + 1) / len(paths), text=f"{index + 1} of {len(paths)} files")
            line = f"**{literal(result.name)}**: {result.status}, {result.chunks} chunks, {result.seconds:.1f} s"
            st.markdown(line + (f" · {literal(result.error)}" if result.error else ""))  # file names are the uploader's text

        try:
            results = ops.ingest_files(current, kb, paths, on_file=report)
        except IngestionLockedError as error:  # another upload or `helpmate ingest` is writing this knowledge base
            status.update(label=f"{kb} is busy: nothing more ingested", state="error")
            st.warning(f"Not ingested yet: {error}. Your files are saved: press Ingest again when that job has finished.")
            return
        failed = [r for r in results if r.status == "failed"]
        status.update(label=f"{len(results) - len(failed)} ingested, {len(failed)} failed into {kb}",
                      state="error" if failed else "complete")


def _documents(caller: Caller) -> None:
    st.subheader("Knowledge bases and documents")
    current = settings()
    kbs = ops.knowledge_bases(current)
    st.dataframe(kbs, hide_index=True, width="stretch")
    if kbs.empty:
        return
    kb = st.selectbox("Show documents of", list(kbs["name"]), key="admin_docs_kb")
    failed_only = st.toggle("Only files that failed", key="admin_failed_only")
    docs = ops.documents(current, caller, kb, failed_only)
    failures = int((docs["status"] == "failed").sum()) if not docs.empty else 0
    st.caption(f"{len(docs)} documents" + (f", {failures} failed (see the error column)" if failures else ""))
    st.dataframe(docs, hide_index=True, width="stretch")
    indexed = list(docs.loc[docs["status"] == "indexed", "source"]) if not docs.empty else []
    source = st.selectbox("Read the passages of", indexed, index=None, placeholder="a document", key="admin_passages_doc",
                          help="What the assistant reads of a file. Headings of PDFs and plain text are found from "
                               "where lines stand: check here how your own files came out.")
    if source is not None:
        st.dataframe(ops.passages(current, caller, kb, source), hide_index=True, width="stretch")
    with st.expander("Ingestion runs"):
        st.dataframe(ops.ingestion_runs(current, kb), hide_index=True, width="stretch")


def _registry():
    """``finetune.registry`` when installed (promotion and rollback live there)."""
    if importlib.util.find_spec("finetune.registry") is None:
        return None
    import finetune.registry as registry

    return registry


def _vllm_url() -> str | None:
    """Promotion loads the adapter into the model server when the assistant uses one (as the CLI does)."""
    current = settings()
    return current.vllm_base_url if current.llm_backend == "vllm" else None


def _model_versions(caller: Caller) -> None:
    st.subheader("Model versions")
    if "admin_flash" in st.session_state:
        st.success(st.session_state.pop("admin_flash"))
    current = settings()
    versions = ops.model_versions(current)
    if versions.empty:
        st.caption("No fine-tuned version yet; the base model answers. Start a fine-tuning run below.")
    else:
        st.dataframe(versions, hide_index=True, width="stretch")
    registry = _registry()
    if registry is None:
        st.caption("Promotion needs `finetune.registry`, which is not installed.")
        return
    candidates = list(versions[versions["status"].isin(["candidate", "rejected", "retired"])]["name"]) if not versions.empty else []
    left, right = st.columns(2)
    with left.form("promote"):
        name = st.selectbox("Version to promote", candidates, disabled=not candidates)
        if st.form_submit_button("Promote", disabled=not candidates):
            try:
                registry.promote(name, current, _vllm_url(), reason=f"promoted by {caller.name} on the admin page")
                audit(current, caller, "model.promote", name)
                st.session_state["admin_flash"] = f"{name} is now active."
                st.rerun()
            except (ValueError, RuntimeError) as error:
                st.error(str(error))
    with right.form("rollback"):
        st.caption("Return to the version that was active before the current one.")
        if st.form_submit_button("Roll back", disabled=versions.empty or "active" not in set(versions["status"])):
            try:
                restored = registry.rollback(current, _vllm_url())
                audit(current, caller, "model.rollback", restored.name if restored else "base model")
                st.session_state["admin_flash"] = f"Rolled back; now answering with {restored.name if restored else 'the base model'}."
                st.rerun()
            except (ValueError, RuntimeError) as error:
                st.error(str(error))


@st.fragment(run_every=timedelta(seconds=3))
def _finetune_progress() -> None:
    run: ops.BackgroundRun | None = st.session_state.get(RUN_KEY)
    if run is None:
        return
    check_session("admin")  # reruns on its own: stops when the admin is logged out or disabled
    if run.finished():
        code = run.process.returncode
        (st.success if code == 0 else st.error)(f"Fine-tuning run started {run.started_at:%H:%M:%S} UTC finished (exit {code}).")
    else:
        st.info(f"Fine-tuning run started {run.started_at:%H:%M:%S} UTC is running…")
    st.code(run.log_tail() or "(no output yet)")


def _finetune(caller: Caller) -> None:
    st.subheader("Fine-tuning")
    st.caption("Exports feedback, trains a LoRA adapter, evaluates it against the active model and promotes it "
               "only if it is better (`helpmate finetune run`). It runs in the background; this page shows its log.")
    run: ops.BackgroundRun | None = st.session_state.get(RUN_KEY)
    running = run is not None and not run.finished()
    min_new = st.number_input("Minimum new feedback", min_value=0, value=0, step=1, key="admin_min_feedback")
    if st.button("Start fine-tuning run", key="admin_finetune", disabled=running):
        st.session_state[RUN_KEY] = ops.start_finetune_run(settings(), ["--min-new-feedback", str(int(min_new))])
        audit(settings(), caller, "finetune.start", None, {"min_new_feedback": int(min_new)})
    _finetune_progress()


def _set_public(name: str, key: str) -> None:
    """A visibility toggle changed. Callbacks run before the page, so the admin is checked again here."""
    account = current_account()
    if account is None or not account.may("admin"):
        return  # the page run that follows shows the login form
    visibility = "public" if st.session_state[key] else "internal"
    try:
        set_visibility(settings(), name, visibility, by=account.caller())
        st.session_state["admin_access_flash"] = f"{name} is now {visibility}."
    except ValueError as error:
        st.session_state["admin_access_error"] = str(error)


def _visibility(kbs) -> None:
    st.markdown("**Knowledge bases customers see.** The chat offers only public ones; internal ones are for "
                "operators. New knowledge bases start internal.")
    for name, visibility in zip(kbs["name"], kbs["visibility"]):
        key = f"admin_public_{name}"
        st.session_state[key] = visibility == "public"  # what the database says now (another admin may have changed it)
        st.toggle(f"{literal(name)}: public", key=key, on_change=_set_public, args=(name, key))


def _operators(caller: Caller, kb_names: list[str]) -> None:
    st.markdown("**Knowledge bases each operator sees** on the dashboard (admins see all). A change applies "
                "on the operator's next page run.")
    for user in list_users(settings()):
        if user["role"] != "operator":
            continue
        name, kbs = user["name"], user["knowledge_bases"]
        with st.form(f"admin_kbs_{name}"):
            every = st.checkbox(f"{literal(name)}: all knowledge bases", value=kbs is None)
            chosen = st.multiselect(f"Knowledge bases of {literal(name)}", kb_names,
                                    default=[k for k in kbs or [] if k in kb_names],
                                    help="Used when 'all knowledge bases' is off.")
            if st.form_submit_button("Save", key=f"admin_kbs_save_{name}"):
                try:
                    set_knowledge_bases(name, None if every else chosen, settings(), by=caller)
                except UserError as error:
                    st.error(str(error))
                else:
                    st.session_state["admin_access_flash"] = f"Saved the knowledge bases of {name}."
                    st.rerun()


def _access(caller: Caller) -> None:
    st.subheader("Who sees what")
    if "admin_access_flash" in st.session_state:
        st.success(st.session_state.pop("admin_access_flash"))
    if "admin_access_error" in st.session_state:
        st.error(st.session_state.pop("admin_access_error"))
    kbs = ops.knowledge_bases(settings())
    if kbs.empty:
        st.caption("No knowledge base yet: upload documents first.")
    else:
        _visibility(kbs)
    _operators(caller, list(kbs["name"]))
    st.dataframe(ops.users(settings()), hide_index=True, width="stretch")
    st.subheader("Audit log")
    st.caption("Logins, failed and refused logins, and changes to users, knowledge bases, tickets and models; newest first.")
    log = ops.audit_table(settings())
    st.dataframe(log, hide_index=True, width="stretch")
    st.download_button("Download audit log (CSV)", csv_bytes(log), file_name="audit_log.csv", mime="text/csv",
                       key="csv_audit_log", disabled=log.empty)


def _webhooks(caller: Caller, kb_names: list[str]) -> None:
    st.subheader("Webhooks")
    st.caption("A help desk or chat channel hears at once of hand-overs, of customers writing to a person, of ticket "
               "moves and of negative spikes: signed JSON POSTs, retried until taken (README, \"Webhooks\").")
    if "admin_webhook_secret" in st.session_state:
        webhook_id, secret = st.session_state.pop("admin_webhook_secret")
        st.success(f"Webhook {webhook_id} added. Its signing secret is shown this once: keep it where the receiver "
                   "checks signatures.")
        st.code(secret, language=None)
    if "admin_webhook_flash" in st.session_state:
        st.success(st.session_state.pop("admin_webhook_flash"))
    rows = manage.webhooks(settings(), caller)
    if rows:
        st.dataframe(pd.DataFrame(rows), hide_index=True, width="stretch")
    with st.form("admin_webhook_add", clear_on_submit=True):
        url = st.text_input("Address (http or https)", key="admin_webhook_url")
        chosen = st.multiselect("Events", list(EVENTS), default=list(EVENTS), key="admin_webhook_events",
                                help="; ".join(f"{name}: {what}" for name, what in EVENTS.items()))
        kb = st.selectbox("Knowledge base", ["All", *kb_names], key="admin_webhook_kb")
        if st.form_submit_button("Add webhook"):
            try:
                webhook_id, _, secret = manage.add(settings(), caller, url, chosen, None if kb == "All" else kb)
            except ValueError as error:
                st.error(literal(str(error)))  # it quotes the address as typed
            else:
                st.session_state["admin_webhook_secret"] = (webhook_id, secret)
                st.rerun()
    active = {row["id"]: row["url"] for row in rows if row["active"]}
    if active:
        picked = st.selectbox("Webhook", list(active), format_func=lambda i: f"{i}: {active[i]}", key="admin_webhook_pick")
        test, remove = st.columns(2)
        if test.button("Send a test ping", key="admin_webhook_test"):
            result = manage.ping(settings(), caller, picked)
            if result["status"] == "delivered":
                st.success(f"Delivery {result['id']}: the receiver took it.")
            else:
                # The receiver's own answer, as text: another system's words are never markup here.
                st.error(f"Delivery {result['id']}: not taken ({literal(result['last_error'])}); "
                         "it is retried like any other.")
        if remove.button("Remove webhook", key="admin_webhook_remove"):
            manage.remove(settings(), caller, picked)
            st.session_state["admin_webhook_flash"] = f"Webhook {picked} removed."
            st.rerun()
    failed = manage.deliveries(settings(), caller, status="failed", limit=50)
    if failed:
        st.markdown("**Failed deliveries** (every try refused; send again once the receiver is fixed)")
        st.dataframe(pd.DataFrame(failed), hide_index=True, width="stretch")
        again = st.selectbox("Delivery", [row["id"] for row in failed], key="admin_webhook_retry_pick")
        if st.button("Send again", key="admin_webhook_retry"):
            manage.retry(settings(), caller, again)
            st.session_state["admin_webhook_flash"] = f"Delivery {again} will be sent again."
            st.rerun()


def main() -> None:
    caller = require_role("admin").caller()
    st.title("Admin")
    documents_tab, models_tab, access_tab, webhooks_tab = st.tabs(["Knowledge bases", "Models", "Access", "Webhooks"])
    with documents_tab, friendly_errors():
        _upload()
        _documents(caller)
    with models_tab, friendly_errors():
        _model_versions(caller)
        _finetune(caller)
    with access_tab, friendly_errors():
        _access(caller)
    with webhooks_tab, friendly_errors():
        _webhooks(caller, list(ops.knowledge_bases(settings())["name"]))


main()
