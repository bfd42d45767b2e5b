"""Source of docs/architecture/architecture.png. Render: `make diagram` (needs graphviz + `diagrams`)."""

from diagrams import Cluster, Diagram, Edge
from diagrams.aws.analytics import Glue
from diagrams.aws.compute import Lambda
from diagrams.aws.cost import Budgets
from diagrams.aws.devtools import Codedeploy
from diagrams.aws.general import Users
from diagrams.aws.integration import SNS, Eventbridge, StepFunctions
from diagrams.aws.management import Cloudtrail, Cloudwatch, SystemsManagerParameterStore
from diagrams.aws.network import APIGateway
from diagrams.aws.security import KMS
from diagrams.aws.storage import S3

GRAPH = {"splines": "spline", "nodesep": "0.5", "ranksep": "1.0", "fontsize": "20"}

with Diagram(
    "dq-compliance-platform", filename="architecture", show=False, direction="LR", outformat="png", graph_attr=GRAPH
):
    users = Users("clients")
    with Cluster("Foundation"):
        KMS("CMK encrypts all")
        raw = S3("raw")
        processed = S3("processed\n+ quarantine")
        analytics = S3("analytics\nmodels, results,\nexplanations")
        audit = S3("audit")
        trail = Cloudtrail("CloudTrail")
        alerts = SNS("alerts")
        budget = Budgets("budget 80%")
    with Cluster("Data quality"):
        rule = Eventbridge("Object Created\nincoming/")
        sfn = StepFunctions("state machine")
        glue = Glue("Glue 5.0 job\nDQDL engine")
        results_fn = Lambda("results,\nmetrics")
        cw = Cloudwatch("dashboards,\nalarms")
    with Cluster("Inference"):
        api = APIGateway("REST API /prod")
        fn = Lambda("ml-infer image\nONNX baseline +\nMiniLM, alias live")
        deploy = Codedeploy("canary 10%")
        ssm = SystemsManagerParameterStore("A/B weights")
        explain = Lambda("batch SHAP")

    raw >> rule >> sfn >> glue
    glue >> Edge(label="pass") >> processed
    glue >> Edge(label="results") >> analytics
    sfn >> results_fn >> cw
    results_fn >> Edge(label="score low / halt") >> alerts
    processed >> explain >> analytics
    users >> api >> fn
    fn >> Edge(label="read only") >> analytics
    fn >> ssm
    deploy >> fn
    trail >> audit
    budget >> alerts
