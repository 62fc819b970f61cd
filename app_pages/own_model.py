"""The sidebar's "Add your own model": an upload becomes a checkpoint like the shipped ones and joins the pair."""

import streamlit as st

from app_pages.shared import current_dataset
from explorer import data, models
from explorer.models import own


def uploader_key() -> str:
    """The uploader's key changes after each try, which empties it: a multiple-file uploader adds to what it
    holds, and the next try must not carry this one's files."""
    return f"own_model_file_{st.session_state.setdefault('own_model_tries', 0)}"


def add_uploaded() -> None:
    # A button callback: it runs before the page does, so it may still set the model picker's value.
    uploads = st.session_state.get(uploader_key()) or []
    st.session_state["own_model_tries"] += 1
    weights = [u for u in uploads if u.name.lower().endswith((".onnx", ".safetensors"))]
    if len(weights) != 1:
        st.session_state["own_model_message"] = (
            "error", "Choose one .safetensors or .onnx file (with the .onnx.data file beside it, if the export "
                     f"wrote one), not {len(weights)}.")
        return
    upload = weights[0]
    name = st.session_state.get("own_model_name", "").strip() or own.suggested_name(upload.name)
    embedding = st.session_state.get("own_model_embedding", "").strip() or None
    beside = {u.name: u.getvalue() for u in uploads if u is not upload}
    try:
        path = own.add_upload(upload.getvalue(), upload.name, name, embedding, current_dataset(), beside)
    except models.CheckpointError as error:
        st.session_state["own_model_message"] = ("error", str(error))
        return
    card = models.read_card(path)
    st.session_state["model_pair"] = [*st.session_state.get("model_pair", [])[:1], name]
    st.session_state["own_model_message"] = (
        "success", f"Added **{name}**: {card['architecture']}, clean accuracy {card['clean_accuracy']:.2%} on the "
        f"10,000 {data.DATASETS[current_dataset()].title} test images. It is now in the pair above, and in every page.")


def add_model_form() -> None:
    with st.expander("Add your own model", icon=":material/upload_file:"):
        st.file_uploader(
            "Weights", type=["safetensors", "onnx", "data"], key=uploader_key(), accept_multiple_files=True,
            help="The explorer's ConvNet in safetensors, or any ONNX classifier taking (N, 1, 28, 28) images in "
                 "[0, 1] and giving 10 logits, with its NAME.onnx.data file if torch.onnx.export wrote one (pick "
                 "both). Pickles are refused; nothing in a file is run as code. Up to 10 MB a file.")
        st.text_input("Name", key="own_model_name", placeholder="from the file's name",
                      help="Lower-case letters, digits, - and _.")
        st.text_input("Embedding layer (ONNX only)", key="own_model_embedding",
                      placeholder="the input of the last dense layer",
                      help="The output name of the layer the latent page shows and the latent attack moves.")
        st.button("Add", on_click=add_uploaded, icon=":material/add:",
                  help="Checks the file and measures its clean accuracy on the 10,000 test images of the sidebar's "
                       "dataset (seconds).")
        if message := st.session_state.pop("own_model_message", None):
            (st.success if message[0] == "success" else st.error)(message[1])
