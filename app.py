"""`streamlit run app.py`: the explorer's pages and the model pair they compare."""

import streamlit as st

from app_pages.own_model import add_model_form
from app_pages.shared import (
    build_view,
    follow_link,
    item,
    models_of_dataset,
    show_link_notices,
    switch_dataset,
    usable,
    warm_up_umap,
)
from explorer import data
from explorer.web.view import attack_page_title

st.set_page_config(page_title="Latent robustness explorer", page_icon=":material/search:", layout="wide")

follow_link()  # a shared link's view, once per session, before the widgets it sets exist
with st.sidebar:
    st.header("Models to compare")
    st.selectbox("Dataset", list(data.DATASETS), format_func=lambda name: data.DATASETS[name].title, key="dataset",
                 on_change=switch_dataset,
                 help="MNIST, the paper's digits, or Fashion-MNIST, its harder drop-in replacement.")
    # The pages read the pair from here: a plain key, written on every run, survives page switches.
    st.session_state["models"] = usable(st.multiselect(
        "Two models", models_of_dataset(), key="model_pair", max_selections=2,
        help="Softmax is the cross-entropy baseline; triplet is the paper's method (Table 1: Ours)."))
    add_model_form()
show_link_notices()
build_view()  # what every page shows: dataset, models, digit, attack, eps

warm_up_umap()
st.navigation([
    st.Page("app_pages/attack.py", title=attack_page_title(item()), icon=":material/my_location:", default=True),
    st.Page("app_pages/latent.py", title="Latent space (Figure 2)", icon=":material/scatter_plot:"),
    st.Page("app_pages/budget.py", title="Epsilon budget", icon=":material/show_chart:"),
    st.Page("app_pages/table1.py", title="Table 1", icon=":material/table_chart:"),
    st.Page("app_pages/lens.py", title="Gradient-masking lens", icon=":material/landscape:"),
    st.Page("app_pages/gallery.py", title="Gallery (Figure 1)", icon=":material/grid_view:"),
    st.Page("app_pages/guide.py", title="Guide", icon=":material/school:"),
]).run()
