"""Compare LLMs: one prompt, several deployments side by side, streamed; runs saved and charted."""

import pandas as pd
import plotly.express as px
import streamlit as st

from console import deps, widgets
from core.auth.roles import Permission
from core.errors import DomainError
from core.llm import compare, gateway
from core.llm.types import Attachment, Capability
from core.money import format_usd

IMAGE_TYPES = {
    "png": "image/png",
    "jpg": "image/jpeg",
    "jpeg": "image/jpeg",
    "webp": "image/webp",
    "gif": "image/gif",
}
AUDIO_TYPES = {
    "mp3": "audio/mpeg",
    "wav": "audio/wav",
    "m4a": "audio/mp4",
    "ogg": "audio/ogg",
    "webm": "audio/webm",
}


def _default_targets(ready: list[str]) -> pd.DataFrame:
    first = ready[0] if ready else ""
    # With no keys configured the bundled model is compared with itself at two temperatures.
    second = ready[1] if len(ready) > 1 else first
    temps = (0.2, 1.0) if second == first else (0.7, 0.7)
    return pd.DataFrame({"deployment": [first, second], "temperature": list(temps)})


def _attachment(upload) -> Attachment | None:  # type: ignore[no-untyped-def]
    if upload is None:
        return None
    ext = upload.name.rsplit(".", 1)[-1].lower()
    kind = "image" if ext in IMAGE_TYPES else "audio"
    mime = IMAGE_TYPES.get(ext) or AUDIO_TYPES.get(ext, "application/octet-stream")
    return Attachment(kind, upload.getvalue(), mime, upload.name)


def _form(actor, caps) -> compare.CompareSpec | None:  # type: ignore[no-untyped-def]
    ready = [name for name, (ok, _, _) in caps.items() if ok]
    not_ready = {name: why for name, (ok, why, _) in caps.items() if not ok}
    with st.container(border=True):
        system = st.text_area(
            "System prompt (optional)",
            max_chars=compare.MAX_PROMPT_CHARS,
            height=68,
            key="cmp_system",
        )
        prompt = st.text_area(
            "Prompt", max_chars=compare.MAX_PROMPT_CHARS, height=120, key="cmp_prompt"
        )
        st.caption("Targets: a deployment and its temperature per row (up to 6).")
        targets = st.data_editor(
            _default_targets(ready),
            num_rows="dynamic",
            key="cmp_targets",
            hide_index=True,
            column_config={
                "deployment": st.column_config.SelectboxColumn(
                    "Deployment", options=ready, required=True
                ),
                "temperature": st.column_config.NumberColumn(
                    "Temperature", min_value=0.0, max_value=2.0, step=0.1, required=True
                ),
            },
        )
        if not_ready:
            st.caption("Not available: " + "; ".join(f"{n} ({w})" for n, w in not_ready.items()))
        c1, c2, c3 = st.columns(3)
        max_tokens = c1.slider("Max tokens", 16, 2048, 200, step=16, key="cmp_max_tokens")
        judge = c2.selectbox("Judge model (optional)", ["none", *ready], key="cmp_judge")
        upload = c3.file_uploader(
            "Image or audio (optional)", type=list(IMAGE_TYPES) + list(AUDIO_TYPES), key="cmp_file"
        )
        reference = st.text_area(
            "Reference answer (optional, scores similarity)",
            max_chars=compare.MAX_PROMPT_CHARS,
            height=68,
            key="cmp_reference",
        )
        attachment = _attachment(upload)
        if attachment is not None:
            needed = (
                Capability.VISION if attachment.kind == "image" else Capability.AUDIO_TRANSCRIPTION
            )
            able = [n for n, (ok, _, has) in caps.items() if ok and needed in has]
            if able:
                st.info(f"This {attachment.kind} can go to: {', '.join(able)}.")
            else:
                st.warning(
                    f"No configured deployment can take {attachment.kind} input "
                    f"({needed.value}). Configure one (for example GPT-4o or Claude for "
                    "images, Whisper for audio) on the LLM router page."
                )
        run = st.button("Compare", type="primary", icon=":material/play_arrow:", key="cmp_run")
    if not run:
        return None
    rows = [r for r in targets.to_dict("records") if r.get("deployment")]
    return compare.CompareSpec(
        prompt=prompt,
        system_prompt=system,
        max_tokens=int(max_tokens),
        targets=tuple(
            compare.CompareTarget(r["deployment"], float(r["temperature"] or 0)) for r in rows
        ),
        reference=reference.strip() or None,
        judge=None if judge == "none" else judge,
        attachment=attachment,
    )


def _stream(actor, spec: compare.CompareSpec) -> None:  # type: ignore[no-untyped-def]
    session = compare.CompareSession(actor, spec)
    columns = st.columns(len(spec.targets))
    boxes = []
    for column, target in zip(columns, spec.targets, strict=True):
        column.markdown(f"**{target.deployment}** · T={target.temperature:g}")
        boxes.append((column.empty(), column.empty()))
    with st.spinner("Asking the models..."):
        for event in session.events():
            outcome = session.outcomes[event.index]
            text_box, stats_box = boxes[event.index]
            if outcome.error:
                text_box.error(outcome.error)
            else:
                text_box.markdown(outcome.text or "…")
            if outcome.result is not None:
                r = outcome.result
                stats_box.caption(
                    f"{r.latency_ms:,.0f} ms · {r.input_tokens}+{r.output_tokens} "
                    f"tokens · {format_usd(r.cost_micros)} · {r.finish_reason}"
                )
    with st.spinner("Scoring and saving..."):
        run_id = session.finish()
    scored = [(o.target.deployment, o.judge_score, o.reference_score) for o in session.outcomes]
    if any(j is not None or r is not None for _, j, r in scored):
        st.dataframe(
            pd.DataFrame(scored, columns=["Deployment", "Judge score", "Reference similarity"]),
            hide_index=True,
        )
    st.success(f"Saved as run {run_id}.")


def _history(actor) -> None:  # type: ignore[no-untyped-def]
    runs = compare.list_runs(actor)
    if not runs:
        st.info("No saved runs yet.")
        return
    labels = {
        r.id: f"#{r.id} · {deps.local_time(r.created_at, '%Y-%m-%d %H:%M')} · {r.actor} · "
        f"{r.prompt[:60]}"
        for r in runs
    }
    chosen = st.selectbox("Run", list(labels), format_func=labels.get, key="cmp_history")
    _, results = compare.run_detail(actor, chosen)
    st.dataframe(
        pd.DataFrame(
            [
                {
                    "Deployment": r.deployment,
                    "T": r.temperature,
                    "Answer": r.text or r.error,
                    "Latency ms": round(r.latency_ms),
                    "Tokens in/out": f"{r.input_tokens}/{r.output_tokens}",
                    "Cost": format_usd(r.cost_micros),
                    "Judge": r.judge_score,
                    "Ref. sim.": r.reference_score,
                }
                for r in results
            ]
        ),
        hide_index=True,
        width="stretch",
    )
    points = pd.DataFrame(
        [
            {
                "time": ts,
                "deployment": r.deployment,
                "latency_ms": r.latency_ms,
                "cost_usd": r.cost_micros / 1e6,
            }
            for ts, r in compare.results_over_time(actor)
            if r.error is None
        ]
    )
    if len(points):
        left, right = st.columns(2)
        with left:
            st.caption("Latency per deployment over time")
            widgets.chart(
                px.line(
                    points.sort_values("time"),
                    x="time",
                    y="latency_ms",
                    color="deployment",
                    markers=True,
                )
            )
        with right:
            st.caption("Cost per call over time (USD)")
            widgets.chart(
                px.line(
                    points.sort_values("time"),
                    x="time",
                    y="cost_usd",
                    color="deployment",
                    markers=True,
                )
            )


def render() -> None:
    actor = deps.page_actor(Permission.LLM_COMPARE)
    st.title("Compare LLMs")
    st.caption("One prompt to several deployments at once, answers streaming side by side.")
    try:
        caps = gateway.deployment_capabilities(actor)
        tab_run, tab_history = st.tabs(["New comparison", "Saved runs"])
        with tab_run:
            spec = _form(actor, caps)
            if spec is not None:
                _stream(actor, spec)
        with tab_history:
            _history(actor)
    except DomainError as exc:
        deps.show_error(exc)


if __name__ == "__main__":
    render()
