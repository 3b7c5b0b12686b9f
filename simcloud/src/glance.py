"""Just enough of the image API (Glance v2) to read an image and its
properties by id: GET /image (versions), GET /image/v2/images[/{id}]."""

from instance_ha.simcloud import views
from instance_ha.simcloud.wire import Response

PREFIX = "/image"


def operation(request):
    return "glance.image" if "/images" in request.path else "glance.versions"


def handle(cloud, request):
    path = request.path.rstrip("/")
    if path == PREFIX and request.method == "GET":
        return Response(300, {"versions": [{
            "id": "v2.16", "status": "CURRENT",
            "links": [{"rel": "self",
                       "href": f"{request.base_url}{PREFIX}/v2/"}]}]})
    context = cloud.identity.validate(
        request.headers.get("X-Auth-Token"),
        request.headers.get("X-Service-Token"))
    if context is None:
        return Response(401, "401 Unauthorized\n\nThis server could not "
                             "verify that you are authorized to access the "
                             "document you requested.\n\n")
    owner = cloud.identity.admin_project.id
    with cloud.lock:
        if path == PREFIX + "/v2/images" and request.method == "GET":
            return Response(200, {"images": [
                views.glance_image(i, request.base_url, owner)
                for i in cloud.images.values()],
                "schema": "/v2/schemas/images", "first": "/v2/images"})
        image_id = path.rsplit("/", 1)[-1]
        if path == f"{PREFIX}/v2/images/{image_id}" and \
                request.method == "GET":
            image = cloud.images.get(image_id)
            if image is not None:
                return Response(200, views.glance_image(
                    image, request.base_url, owner))
            return Response(404, f"404 Not Found\n\nNo image found with ID "
                                 f"{image_id}\n\n")
    return Response(404, "404 Not Found\n\nThe resource could not be "
                         "found.\n\n")
